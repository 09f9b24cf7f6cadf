/** Reads the gRPC status and google.rpc details off a failed call, for assertions. */
import { type DescMessage, fromBinary, type MessageShape } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import type { ServiceError } from "@grpc/grpc-js";
import { expect } from "vitest";
import { StatusSchema } from "../../src/gen/google/rpc/status_pb.js";

/** The failure of `call`; fails the test when it succeeds. */
export async function failure(call: Promise<unknown>): Promise<ServiceError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e as ServiceError,
  );
  expect(error, "the call should have failed").toBeDefined();
  return error as ServiceError;
}

/** The detail of type `schema` in the error's grpc-status-details-bin, if any. */
export function detail<D extends DescMessage>(error: ServiceError, schema: D): MessageShape<D> | undefined {
  const raw = error.metadata.get("grpc-status-details-bin")[0];
  if (!(raw instanceof Buffer)) return undefined;
  for (const any of fromBinary(StatusSchema, raw).details) {
    const unpacked = anyUnpack(any, schema);
    if (unpacked !== undefined) return unpacked;
  }
  return undefined;
}
