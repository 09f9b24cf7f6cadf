/**
 * Request decoding that never throws inside grpc-js. A deserializer that throws makes grpc-js
 * answer INTERNAL before any handler runs (so the call is neither logged nor counted); ours
 * returns a RejectedRequest instead, which the adapter answers with INVALID_ARGUMENT like any
 * other bad input. Size checks run on the raw bytes first, so an oversized list is refused before
 * it costs a decode.
 */
import { type DescMessage, fromBinary } from "@bufbuild/protobuf";
import { DomainError, InvalidArgumentError } from "../errors.js";

/** A request message that could not be accepted; carries the error to answer with. */
export class RejectedRequest {
  constructor(readonly error: DomainError) {}
}

/** Checks a request's raw bytes before decoding; throws a DomainError to refuse it. */
export type Precheck = (bytes: Uint8Array) => void;

/**
 * Decodes a request's raw bytes faster than protobuf-es for the messages it is sure about; returns
 * undefined for the rest, which protobuf-es then decodes (and refuses, when they are malformed).
 * One marked `enforcesPrecheck` refuses, in any message it would accept, exactly what the method's
 * precheck would (the id-list decoders count ids as they copy them): the precheck then runs only
 * on the messages it leaves to protobuf-es, and a 1,000-id request is walked once, not twice.
 */
export type FastDecoder = ((bytes: Uint8Array) => unknown) & { readonly enforcesPrecheck?: boolean };

/**
 * A deserializer for `schema` that returns a RejectedRequest rather than throwing. With `fast`,
 * a message `fast` decodes is not decoded again; the others take the protobuf-es path.
 */
export function safeDeserializer(schema: DescMessage, precheck?: Precheck, fast?: FastDecoder): (bytes: Buffer) => unknown {
  const fastFirst = fast?.enforcesPrecheck === true ? fast : undefined;
  const fastAfter = fastFirst === undefined ? fast : undefined;
  return (bytes) => {
    try {
      const early = fastFirst?.(bytes);
      if (early !== undefined) return early;
      precheck?.(bytes);
      return fastAfter?.(bytes) ?? fromBinary(schema, bytes);
    } catch (error: unknown) {
      if (error instanceof DomainError) return new RejectedRequest(error);
      const why = error instanceof Error ? error.message : String(error);
      return new RejectedRequest(new InvalidArgumentError("request", `is not a valid ${schema.typeName} message: ${why}`));
    }
  };
}
