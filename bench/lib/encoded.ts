/**
 * Member writes sent as request bytes encoded before the clock starts. The bench's load figures
 * time the service, not the bench: making 10M ids (~1.25 µs each) and encoding them with
 * protobuf-es in the one bench process capped every write near 250k ids/s while the service sat
 * ~85% idle (profile of `import` at 1M users). A client that loads lists this large streams
 * bytes it already has; so do these. Redis gets its ids made beforehand too, and COPY reads rows
 * written to a file beforehand.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { BatchCheckMembershipRequestSchema, MembershipService } from "../../src/gen/segments/v1/membership_service_pb.js";
import {
  AddMembersRequestSchema,
  type AddMembersResponse,
  AddMembersResponseSchema,
  ImportMembersRequestSchema,
  type ImportMembersResponse,
  ImportMembersResponseSchema,
  ImportMode,
  SegmentService,
} from "../../src/gen/segments/v1/segment_service_pb.js";
import { userId } from "./dataset.js";

const identity = (bytes: Buffer) => bytes;
const ADD = `/${SegmentService.typeName}/AddMembers`;
const IMPORT = `/${SegmentService.typeName}/ImportMembers`;
const BATCH_CHECK = `/${MembershipService.typeName}/BatchCheckMembership`;

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** An AddMembersRequest of the dataset users `numbers`, encoded. */
export function encodeAdd(segmentId: string, numbers: readonly number[], seed: number): Buffer {
  return encodeAddIds(
    segmentId,
    numbers.map((n) => userId(seed, n)),
  );
}

/** An AddMembersRequest of `userIds`, encoded. */
export function encodeAddIds(segmentId: string, userIds: string[]): Buffer {
  return asBuffer(toBinary(AddMembersRequestSchema, create(AddMembersRequestSchema, { segmentId, userIds })));
}

/** A BatchCheckMembershipRequest of `userIds`, encoded. */
export function encodeBatchCheck(segmentId: string, userIds: string[]): Buffer {
  return asBuffer(toBinary(BatchCheckMembershipRequestSchema, create(BatchCheckMembershipRequestSchema, { segmentId, userIds })));
}

/**
 * Sends an encoded BatchCheckMembershipRequest; resolves with the response's bytes, not decoded
 * (the load measures the server: a client reads its answers on its own machine).
 */
export function sendBatchCheck(client: grpc.Client, request: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(BATCH_CHECK, identity, identity, request, (error, reply) =>
      error || reply === undefined ? reject(error) : resolve(reply),
    ),
  );
}

/** One ImportMembers (mode ADD) stream's messages of the dataset users in `batches`, encoded. */
export function encodeImport(segmentId: string, batches: Iterable<number[]>, seed: number): Buffer[] {
  const ids = (function* () {
    for (const batch of batches) yield batch.map((n) => userId(seed, n));
  })();
  return encodeImportIds(segmentId, ids);
}

/** One ImportMembers (mode ADD) stream's messages, one per batch of `batches`' ids, encoded. */
export function encodeImportIds(segmentId: string, batches: Iterable<string[]>): Buffer[] {
  const messages: Buffer[] = [];
  for (const userIds of batches) {
    const first = messages.length === 0;
    const message = create(ImportMembersRequestSchema, { ...(first ? { segmentId, mode: ImportMode.ADD } : {}), userIds });
    messages.push(asBuffer(toBinary(ImportMembersRequestSchema, message)));
  }
  return messages;
}

/** A raw client for the encoded calls; close it when done. */
export function rawClient(address: string): grpc.Client {
  return new grpc.Client(address, grpc.credentials.createInsecure(), {
    "grpc.max_send_message_length": -1,
    "grpc.max_receive_message_length": -1,
  });
}

/** Sends an encoded AddMembersRequest. */
export function sendAdd(client: grpc.Client, request: Buffer): Promise<AddMembersResponse> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(ADD, identity, identity, request, (error, reply) =>
      error || reply === undefined ? reject(error) : resolve(fromBinary(AddMembersResponseSchema, reply)),
    ),
  );
}

/** Streams encoded ImportMembersRequests, honouring backpressure, and resolves with the answer. */
export function sendImport(client: grpc.Client, messages: readonly Buffer[]): Promise<ImportMembersResponse> {
  return new Promise((resolve, reject) => {
    const call = client.makeClientStreamRequest(IMPORT, identity, identity, (error, reply) =>
      error || reply === undefined ? reject(error) : resolve(fromBinary(ImportMembersResponseSchema, reply)),
    );
    let next = 0;
    const write = () => {
      while (next < messages.length) {
        if (!call.write(messages[next++] as Buffer)) {
          call.once("drain", write);
          return;
        }
      }
      call.end();
    };
    write();
  });
}
