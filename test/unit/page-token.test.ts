import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../src/errors.js";
import { signPageToken, tokenInteger, verifyPageToken } from "../../src/service/page-token.js";

const secret = randomBytes(32);
const payload = { id: "0190b6a0-0000-7000-8000-000000000001", after: 41 };

/** The InvalidArgumentError `fn` throws; fails the test when it throws nothing or something else. */
function refusal(fn: () => unknown): InvalidArgumentError {
  expect(fn).toThrow(InvalidArgumentError);
  try {
    fn();
  } catch (error: unknown) {
    return error as InvalidArgumentError;
  }
  throw new Error("unreachable");
}

describe("page tokens", () => {
  it("round-trip a payload for the method that signed it", () => {
    expect(verifyPageToken(signPageToken("ListMembers", payload, secret), "ListMembers", secret)).toEqual(payload);
  });

  it("refuse every single-character edit of a token with page_token", () => {
    const token = signPageToken("ListMembers", payload, secret);
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (let i = 0; i < token.length; i++) {
      const other = alphabet[(alphabet.indexOf(token[i] as string) + 1) % alphabet.length] as string;
      const edited = token.slice(0, i) + other + token.slice(i + 1);
      // The last character of base64url may carry padding bits only: an edit there can decode equal.
      if (Buffer.from(edited, "base64url").equals(Buffer.from(token, "base64url"))) continue;
      expect(refusal(() => verifyPageToken(edited, "ListMembers", secret)).field).toBe("page_token");
    }
  });

  it("refuse a token of another method, under another secret, forged, truncated or padded", () => {
    const token = signPageToken("ListMembers", payload, secret);
    expect(refusal(() => verifyPageToken(token, "DiffMembership", secret)).message).toContain("is not a token DiffMembership returned");
    expect(() => verifyPageToken(token, "ListMembers", randomBytes(32))).toThrow(InvalidArgumentError);
    const forged = Buffer.from(JSON.stringify({ ...payload, after: -1e9 })).toString("base64url");
    expect(() => verifyPageToken(forged, "ListMembers", secret)).toThrow(InvalidArgumentError);
    expect(() => verifyPageToken(token.slice(0, -2), "ListMembers", secret)).toThrow(InvalidArgumentError);
    // Buffer would skip the "!" and decode the rest: the alphabet check comes first.
    expect(() => verifyPageToken(`${token.slice(0, 5)}!${token.slice(5)}`, "ListMembers", secret)).toThrow(InvalidArgumentError);
    expect(() => verifyPageToken("", "ListMembers", secret)).toThrow(InvalidArgumentError);
    expect(() => verifyPageToken("A".repeat(5_000), "ListMembers", secret)).toThrow(InvalidArgumentError);
  });

  it("refuse a validly signed payload that is not an object", () => {
    const json = (value: unknown) => signPageToken("X", value as Record<string, unknown>, secret);
    for (const value of [[1, 2], null, 7, "s"]) expect(() => verifyPageToken(json(value), "X", secret)).toThrow(InvalidArgumentError);
  });

  it("refuse an out-of-range or non-integer position even under a valid signature", () => {
    const read = (after: unknown) =>
      tokenInteger(verifyPageToken(signPageToken("ListMembers", { after }, secret), "ListMembers", secret), "after", -1, 2 ** 32 - 1);
    expect(read(-1)).toBe(-1);
    expect(read(2 ** 32 - 1)).toBe(2 ** 32 - 1);
    for (const after of [-2, -1e9, 2 ** 32, 1e20, 1.5, "3", null, undefined]) {
      const error = refusal(() => read(after));
      expect(error.field).toBe("page_token");
      expect(error.message).toContain("outside -1 … 4294967295");
    }
  });
});
