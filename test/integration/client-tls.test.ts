/**
 * SegmentsClient's TLS options reach grpc-js: a private CA and the name to verify, and a client
 * certificate for mTLS, against a grpc-js server with certificates made by openssl for this run.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code, SegmentsClient, SegmentsError, type TlsOptions } from "../../src/client/index.js";
import { MembershipService } from "../../src/gen/segments/v1/membership_service_pb.js";
import { type FakeServer, startFakeServer } from "../support/fake-server.js";

const run = promisify(execFile);

interface Pem {
  ca: Buffer;
  serverCert: Buffer;
  serverKey: Buffer;
  clientCert: Buffer;
  clientKey: Buffer;
}

/** A CA, and a server (segments.test) and a client certificate it signed, on P-256 keys. */
async function makeCertificates(dir: string): Promise<Pem> {
  const openssl = (...args: string[]) => run("openssl", args, { cwd: dir });
  const key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl("req", "-x509", ...key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=segments test CA");
  await writeFile(join(dir, "server.ext"), "subjectAltName=DNS:segments.test\n");
  for (const [name, subject, ext] of [
    ["server", "/CN=segments.test", ["-extfile", "server.ext"]],
    ["client", "/CN=client-tls-test", []],
  ] as const) {
    await openssl("req", ...key, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject);
    const sign = ["-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", ...ext];
    await openssl("x509", "-req", "-in", `${name}.csr`, "-out", `${name}.pem`, ...sign);
  }
  const read = (file: string) => readFile(join(dir, file));
  return {
    ca: await read("ca.pem"),
    serverCert: await read("server.pem"),
    serverKey: await read("server.key"),
    clientCert: await read("client.pem"),
    clientKey: await read("client.key"),
  };
}

describe("SegmentsClient over TLS", () => {
  let dir: string;
  let pem: Pem;
  const servers: FakeServer[] = [];
  const clients: SegmentsClient[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "segments-client-tls-"));
    pem = await makeCertificates(dir);
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    for (const server of servers.splice(0)) await server.stop();
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** A TLS server (client certificates required when `mutual`) and a client of it with `tls`. */
  async function check(mutual: boolean, tls: TlsOptions | undefined): Promise<boolean> {
    const server = await startFakeServer(
      [
        [
          MembershipService,
          { validateTargeting: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback(null, { valid: true }) },
        ],
      ],
      grpc.ServerCredentials.createSsl(mutual ? pem.ca : null, [{ cert_chain: pem.serverCert, private_key: pem.serverKey }], mutual),
    );
    servers.push(server);
    const client = new SegmentsClient(server.address, { retry: false, ...(tls === undefined ? {} : { tls }) });
    clients.push(client);
    return (await client.membership.validateTargeting({ segmentIds: [] })).valid;
  }

  const refused = async (call: Promise<unknown>) => {
    const error = await call.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SegmentsError);
    expect((error as SegmentsError).code).toBe(Code.UNAVAILABLE);
  };

  it("trusts a private CA and verifies the server's name", async () => {
    expect(await check(false, { rootCerts: pem.ca, serverName: "segments.test" })).toBe(true);
  });

  it("refuses a server whose certificate names another host, or an unknown CA", async () => {
    await refused(check(false, { rootCerts: pem.ca }));
    await refused(check(false, { serverName: "segments.test" }));
  });

  it("presents a client certificate for mTLS, and is refused without one", async () => {
    expect(
      await check(true, { rootCerts: pem.ca, serverName: "segments.test", certChain: pem.clientCert, privateKey: pem.clientKey }),
    ).toBe(true);
    await refused(check(true, { rootCerts: pem.ca, serverName: "segments.test" }));
  });

  it("defaults to plaintext on loopback, which a TLS server refuses", async () => {
    await refused(check(false, undefined));
  });

  it("wants a client certificate and its key together", () => {
    expect(() => new SegmentsClient("segments.internal:443", { tls: { certChain: pem.clientCert } })).toThrow(
      /certChain and tls.privateKey/,
    );
  });
});
