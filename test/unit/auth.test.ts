/** Tokens and the authenticator: parsing, hashing, the verified-secret shortcut, stickiness. */
import pino from "pino";
import { describe, expect, it } from "vitest";
import { Authenticator } from "../../src/auth/authenticator.js";
import { allows } from "../../src/auth/roles.js";
import { bearerToken, equalInConstantTime, generateToken, hashSecret, parseToken } from "../../src/auth/tokens.js";
import { PermissionDeniedError, UnauthenticatedError } from "../../src/errors.js";
import type { Role } from "../../src/model.js";
import type { StoredToken } from "../../src/store/token-store.js";

const CHECK = "segments.v1.MembershipService/CheckMembership";
const DELETE = "segments.v1.SegmentService/DeleteSegment";

function stored(id: string, secret: string, role: Role, revoked = false): StoredToken {
  return {
    id,
    name: `${role} token`,
    role,
    secretSha256: hashSecret(secret),
    createdAt: new Date(0),
    createdBy: "test",
    revokedAt: revoked ? new Date(1) : null,
    revokedBy: revoked ? "test" : "",
  };
}

function authenticator(tokens: StoredToken[] = [], bootstrapToken?: string): Authenticator {
  return new Authenticator({ tokens: { all: async () => tokens }, log: pino({ level: "silent" }), bootstrapToken, refreshMs: 60_000 });
}

describe("tokens", () => {
  it("generates distinct tokens that parse back into their id and secret", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const token = generateToken();
      expect(token.bearer).toMatch(/^sgt_[a-z2-7]{12}_[A-Za-z0-9_-]{43}$/);
      expect(parseToken(token.bearer)).toEqual({ id: token.id, secret: token.secret });
      seen.add(token.bearer);
    }
    expect(seen.size).toBe(200);
  });

  it.each([
    ["", undefined],
    ["sgt_", undefined],
    [`sgt_${"a".repeat(12)}-${"b".repeat(43)}`, undefined],
    [`sgx_${"a".repeat(12)}_${"b".repeat(43)}`, undefined],
    [`sgt_${"a".repeat(12)}_${"b".repeat(44)}`, undefined],
    [`sgt_${"a".repeat(12)}_${"b".repeat(43)}`, { id: "a".repeat(12), secret: "b".repeat(43) }],
  ])("parses %j as %j", (bearer, parsed) => {
    expect(parseToken(bearer)).toEqual(parsed);
  });

  it.each([
    ["Bearer abc", "abc"],
    ["bearer abc", "abc"],
    ["BEARER  abc ", "abc"],
    ["Bearer ", undefined],
    ["Basic abc", undefined],
    ["Bearerabc", undefined],
    [undefined, undefined],
    [Buffer.from("Bearer abc"), undefined],
    [`Bearer ${"x".repeat(1100)}`, undefined],
  ])("reads the token of authorization %j as %j", (header, token) => {
    expect(bearerToken(header)).toBe(token);
  });

  it("compares strings for equality", () => {
    expect(equalInConstantTime("abc", "abc")).toBe(true);
    expect(equalInConstantTime("abc", "abd")).toBe(false);
    expect(equalInConstantTime("abc", "ab")).toBe(false);
    expect(equalInConstantTime("", "")).toBe(true);
  });

  it("orders roles reader < writer < admin", () => {
    expect(allows("admin", "writer")).toBe(true);
    expect(allows("writer", "writer")).toBe(true);
    expect(allows("reader", "writer")).toBe(false);
    expect(allows("writer", "admin")).toBe(false);
  });
});

describe("the authenticator", () => {
  it("is off with no token anywhere, and every caller is an unauthenticated admin", async () => {
    const auth = authenticator();
    await auth.load();
    expect(auth.required).toBe(false);
    expect(auth.guard(DELETE)(undefined)).toMatchObject({ authenticated: false, role: "admin" });
  });

  it("refuses a wrong secret for a known id, also after the right one was accepted", async () => {
    const token = generateToken();
    const auth = authenticator([stored(token.id, token.secret, "reader")]);
    await auth.load();
    const check = auth.guard(CHECK);
    const wrong = `sgt_${token.id}_${token.secret.slice(0, -1)}${token.secret.endsWith("A") ? "B" : "A"}`;
    expect(() => check(`Bearer ${wrong}`)).toThrow(UnauthenticatedError);
    expect(check(`Bearer ${token.bearer}`)).toMatchObject({ tokenId: token.id, role: "reader" });
    expect(check(`Bearer ${token.bearer}`)).toMatchObject({ tokenId: token.id });
    expect(() => check(`Bearer ${wrong}`)).toThrow(UnauthenticatedError);
    expect(() => auth.guard(DELETE)(`Bearer ${token.bearer}`)).toThrow(PermissionDeniedError);
  });

  it("accepts the configured admin token and nothing near it", () => {
    const bootstrap = "x".repeat(40);
    const auth = authenticator([], bootstrap);
    expect(auth.required).toBe(true);
    expect(auth.guard(DELETE)(`Bearer ${bootstrap}`)).toMatchObject({ name: "ADMIN_TOKEN", role: "admin", tokenId: "" });
    expect(auth.guard(DELETE)(`Bearer ${bootstrap}`)).toMatchObject({ name: "ADMIN_TOKEN" });
    expect(() => auth.guard(DELETE)(`Bearer ${"x".repeat(39)}y`)).toThrow(UnauthenticatedError);
    expect(() => auth.guard(DELETE)(undefined)).toThrow(/send `authorization: Bearer <token>`/);
  });

  it("drops a revoked token at once, and stays on after the last one goes", async () => {
    const token = generateToken();
    const auth = authenticator([stored(token.id, token.secret, "admin")]);
    await auth.load();
    expect(auth.guard(CHECK)(`Bearer ${token.bearer}`).tokenId).toBe(token.id);
    auth.update(stored(token.id, token.secret, "admin", true));
    expect(() => auth.guard(CHECK)(`Bearer ${token.bearer}`)).toThrow(UnauthenticatedError);
    expect(auth.required).toBe(true);
    expect(() => auth.guard(CHECK)(undefined)).toThrow(UnauthenticatedError);
  });

  it("ignores revoked tokens when loading, so a store holding only those leaves authentication off", async () => {
    const token = generateToken();
    const auth = authenticator([stored(token.id, token.secret, "admin", true)]);
    await auth.load();
    expect(auth.required).toBe(false);
  });
});
