/**
 * A grpc-js server speaking one generated service with handlers the test writes: failure
 * injection for the client (UNAVAILABLE n times, a call that never answers, an endless stream),
 * over the real transport. Unhandled methods answer UNIMPLEMENTED.
 */
import { create, type DescMessage, type DescService, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

// biome-ignore lint/suspicious/noExplicitAny: handlers of any grpc-js call kind, over any message
export type FakeHandler = (call: any, callback?: any) => void;

/** A running fake server. */
export interface FakeServer {
  address: string;
  stop(): Promise<void>;
}

/** Serves each service on 127.0.0.1 with its handlers, keyed by method local name (`checkMembership`). */
export async function startFakeServer(
  services: [DescService, Record<string, FakeHandler>][],
  credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure(),
): Promise<FakeServer> {
  const server = new grpc.Server();
  for (const [service, handlers] of services) server.addService(...serviceOf(service, handlers));
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", credentials, (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return {
    address: `127.0.0.1:${port}`,
    // Endless streams and calls that never answer are the point here: no grace period.
    stop: async () => server.forceShutdown(),
  };
}

function serviceOf(
  service: DescService,
  handlers: Record<string, FakeHandler>,
): [grpc.ServiceDefinition, grpc.UntypedServiceImplementation] {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestDeserialize: (bytes: Buffer) => fromBinary(method.input, bytes),
      requestSerialize: (message: unknown) => encode(method.input, message),
      responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
      responseSerialize: (message: unknown) => encode(method.output, message),
    };
    implementation[method.localName] =
      handlers[method.localName] ??
      ((_call: unknown, callback?: grpc.sendUnaryData<unknown>) =>
        callback?.({ code: grpc.status.UNIMPLEMENTED, details: `${method.name} is not faked` }, null));
  }
  return [definition, implementation];
}

function encode(schema: DescMessage, message: unknown): Buffer {
  const bytes = toBinary(schema, create(schema, message as MessageInitShape<DescMessage>));
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
