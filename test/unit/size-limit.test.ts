/** The per-method request size cap: over it is RESOURCE_EXHAUSTED before decoding; under it, the next check runs. */
import { describe, expect, it } from "vitest";
import { ResourceExhaustedError } from "../../src/errors.js";
import { sizeLimit } from "../../src/grpc/wire-limits.js";

describe("sizeLimit", () => {
  it("refuses a request over the limit, naming its size and the limit", () => {
    const check = sizeLimit(10);
    expect(() => check(new Uint8Array(11))).toThrow(ResourceExhaustedError);
    expect(() => check(new Uint8Array(11))).toThrow("a request of 11 bytes is over this method's limit of 10 bytes");
  });

  it("lets a request at the limit through to the next check", () => {
    const seen: number[] = [];
    const check = sizeLimit(10, (bytes) => void seen.push(bytes.length));
    check(new Uint8Array(10));
    expect(seen).toEqual([10]);
  });
});
