/** Calls with hand-made request bytes, for requests the typed client would refuse to encode. */
import * as grpc from "@grpc/grpc-js";

const identity = (bytes: Buffer) => bytes;

/** The status a call with raw `messages` ends with (one message for unary methods). */
export function rawCall(address: string, path: string, messages: readonly Buffer[], stream: boolean): Promise<grpc.StatusObject> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), {
    "grpc.max_send_message_length": -1,
    "grpc.max_receive_message_length": -1,
  });
  return new Promise<grpc.StatusObject>((resolve) => {
    const done = (error: grpc.ServiceError | null) => {
      client.close();
      resolve(error ?? { code: grpc.status.OK, details: "", metadata: new grpc.Metadata() });
    };
    if (!stream) {
      client.makeUnaryRequest(path, identity, identity, messages[0] ?? Buffer.alloc(0), (error) => done(error));
      return;
    }
    const call = client.makeClientStreamRequest(path, identity, identity, (error) => done(error));
    for (const message of messages) call.write(message);
    call.end();
  });
}

/** A length-delimited protobuf field (tag and length as varints), for building messages by hand. */
export function field(fieldNo: number, value: Buffer): Buffer {
  return Buffer.concat([varint(fieldNo * 8 + 2), varint(value.byteLength), value]);
}

/** A protobuf base-128 varint. */
export function varint(n: number): Buffer {
  const bytes: number[] = [];
  let rest = n;
  while (rest >= 0x80) {
    bytes.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}
