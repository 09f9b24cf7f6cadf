/**
 * The floor-bare baseline: a bare @grpc/grpc-js server whose methods, grpc.health.v1.Health/Check
 * and segments.v1.MembershipService/BatchCheckMembership, answer every call with an empty response
 * (a HealthCheckResponse of status UNKNOWN; a BatchCheckMembershipResponse with no flags) through
 * a no-op handler and Buffer-in, Buffer-out serializers. No protobuf, no adapter, no logger: what
 * grpc-js alone costs a unary call, and a call carrying a batch of ids. Run in its own process by
 * startBareServer, which gets the bound port over IPC.
 */
import { fork } from "node:child_process";
import * as grpc from "@grpc/grpc-js";

/** A running bare server. */
export interface BareServer {
  address: string;
  pid: number;
  stop(): Promise<void>;
}

/** Starts the bare server in a child process. */
export function startBareServer(): Promise<BareServer> {
  return new Promise((resolve, reject) => {
    const child = fork(new URL(import.meta.url), ["--serve"], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const exited = new Promise<void>((done) => child.once("exit", () => done()));
    exited.then(() => reject(new Error("the bare gRPC server exited before it was ready")));
    child.once("message", (port) => {
      resolve({
        address: `127.0.0.1:${String(port)}`,
        pid: child.pid ?? 0,
        stop: async () => {
          child.kill("SIGTERM");
          await exited;
        },
      });
    });
  });
}

function serve(): void {
  const same = (bytes: Buffer) => bytes;
  const empty = Buffer.alloc(0);
  const server = new grpc.Server({ "grpc.max_receive_message_length": -1 });
  const noop = (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, empty);
  const method = (path: string) => ({
    path,
    requestStream: false,
    responseStream: false,
    requestSerialize: same,
    requestDeserialize: same,
    responseSerialize: same,
    responseDeserialize: same,
  });
  server.addService(
    { Check: method("/grpc.health.v1.Health/Check"), BatchCheck: method("/segments.v1.MembershipService/BatchCheckMembership") },
    { Check: noop, BatchCheck: noop },
  );
  server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => {
    if (error !== null) throw error;
    process.send?.(port);
  });
  process.once("SIGTERM", () => server.forceShutdown());
}

if (process.argv.includes("--serve")) serve();
