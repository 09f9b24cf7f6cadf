/**
 * API tokens: `sgt_<id>_<secret>`. The id is public (listed, logged, named in the audit trail) and
 * finds the token in O(1); the secret is 32 random bytes and only its SHA-256 is kept. A plain
 * hash is enough because the secret is random, not a password: nothing can be guessed from the
 * hash, and a slow KDF would cost every call. Hashes are compared in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

const PREFIX = "sgt_";
/** Lowercase letters and digits: an id survives any log, shell or URL unquoted. */
const ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";
const ID_LENGTH = 12;
const SECRET_BYTES = 32;
/** base64url of 32 bytes, unpadded. */
const SECRET_LENGTH = 43;
const TOKEN_LENGTH = PREFIX.length + ID_LENGTH + 1 + SECRET_LENGTH;
const UNDERSCORE = 0x5f;

/** A token split into its public id and its secret. */
export interface ParsedToken {
  id: string;
  secret: string;
}

/** A fresh token: its parts and the bearer string a client sends. */
export interface NewToken extends ParsedToken {
  bearer: string;
}

/** Makes a new token from the system's strong random source. */
export function generateToken(): NewToken {
  const idBytes = randomBytes(ID_LENGTH);
  let id = "";
  for (const byte of idBytes) id += ID_ALPHABET[byte & 31];
  const secret = randomBytes(SECRET_BYTES).toString("base64url");
  return { id, secret, bearer: `${PREFIX}${id}_${secret}` };
}

/** The id and secret of an `sgt_` token, or undefined when `bearer` is not one. */
export function parseToken(bearer: string): ParsedToken | undefined {
  // Shape only, without a regular expression (this runs on every call): an id no token has, or
  // a secret with other characters, fails the lookup or the comparison that follows anyway.
  if (bearer.length !== TOKEN_LENGTH || !bearer.startsWith(PREFIX) || bearer.charCodeAt(PREFIX.length + ID_LENGTH) !== UNDERSCORE) {
    return undefined;
  }
  return { id: bearer.slice(PREFIX.length, PREFIX.length + ID_LENGTH), secret: bearer.slice(PREFIX.length + ID_LENGTH + 1) };
}

/** Whether `id` has the form of a token id. */
export function isTokenId(id: string): boolean {
  return /^[a-z2-7]{12}$/.test(id);
}

/** The hash kept in place of a secret. */
export function hashSecret(secret: string): Buffer {
  return createHash("sha256").update(secret).digest();
}

/** Whether `secret` hashes to `hash`, compared in constant time. */
export function secretMatches(secret: string, hash: Uint8Array): boolean {
  const given = hashSecret(secret);
  return given.length === hash.length && timingSafeEqual(given, hash);
}

/** Whether two strings are equal, in time that depends on their length only. */
export function equalInConstantTime(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}

/** The token in an `authorization` metadata value (`Bearer <token>`, scheme case-insensitive), or undefined. */
export function bearerToken(header: unknown): string | undefined {
  if (typeof header !== "string" || header.length > 1024) return undefined;
  // "Bearer " is what clients send; only another spelling pays for lower-casing.
  if (!header.startsWith("Bearer ") && header.slice(0, 7).toLowerCase() !== "bearer ") return undefined;
  const token = header.slice(7).trim();
  return token === "" ? undefined : token;
}
