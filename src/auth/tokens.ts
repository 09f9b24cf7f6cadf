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
const TOKEN_PATTERN = /^sgt_([a-z2-7]{12})_([A-Za-z0-9_-]{43})$/;

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
  const match = TOKEN_PATTERN.exec(bearer);
  return match === null ? undefined : { id: match[1] ?? "", secret: match[2] ?? "" };
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

/** The token in an `authorization` metadata value (`Bearer <token>`, scheme case-insensitive), or undefined. */
export function bearerToken(header: unknown): string | undefined {
  if (typeof header !== "string" || header.length > 1024) return undefined;
  const space = header.indexOf(" ");
  if (space < 0 || header.slice(0, space).toLowerCase() !== "bearer") return undefined;
  const token = header.slice(space + 1).trim();
  return token === "" ? undefined : token;
}
