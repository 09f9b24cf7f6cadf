/**
 * Page tokens: opaque to clients and tamper-evident. A token is base64url(JSON payload ‖ tag),
 * the tag an HMAC-SHA256 (first 16 bytes) over the method name and the payload under the
 * database's secret, so a token only comes back the way this service issued it, and only to the
 * method that issued it. Callers still check every field: the HMAC proves where a token came
 * from, not that the data behind it has not changed since.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { InvalidArgumentError } from "../errors.js";

/** 128 bits of tag: forging one is out of reach, and tokens stay short. */
const TAG_BYTES = 16;
/** Every token we issue is far shorter; anything longer is refused before any work. */
const TOKEN_MAX_CHARS = 1_024;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** A verified token's fields, still to be checked one by one. */
export type TokenPayload = Readonly<Record<string, unknown>>;

/** A token for `method` carrying `payload`. */
export function signPageToken(method: string, payload: TokenPayload, secret: Uint8Array): string {
  const json = Buffer.from(JSON.stringify(payload), "utf8");
  return Buffer.concat([json, tag(method, json, secret)]).toString("base64url");
}

/** Where a token travels: the request field named in errors, and the longest token accepted. */
export interface TokenField {
  field: string;
  maxChars: number;
}

const PAGE_TOKEN: TokenField = { field: "page_token", maxChars: TOKEN_MAX_CHARS };

/** The payload of a token `method` issued; InvalidArgumentError naming the field for anything else. */
export function verifyPageToken(token: string, method: string, secret: Uint8Array, where: TokenField = PAGE_TOKEN): TokenPayload {
  const refuse = () => new InvalidArgumentError(where.field, `is not a token ${method} returned; start again without a token`);
  // Buffer's base64url decoder skips characters it does not know, so check the alphabet first.
  if (token.length > where.maxChars || !BASE64URL.test(token)) throw refuse();
  const raw = Buffer.from(token, "base64url");
  if (raw.byteLength <= TAG_BYTES) throw refuse();
  const json = raw.subarray(0, raw.byteLength - TAG_BYTES);
  if (!timingSafeEqual(raw.subarray(raw.byteLength - TAG_BYTES), tag(method, json, secret))) throw refuse();
  let payload: unknown;
  try {
    payload = JSON.parse(json.toString("utf8"));
  } catch {
    throw refuse();
  }
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) throw refuse();
  return payload as TokenPayload;
}

/** The integer field `key` of a verified payload, refused unless within [min, max]. */
export function tokenInteger(payload: TokenPayload, key: string, min: number, max: number, field = "page_token"): number {
  const value = payload[key];
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(field, `holds a position outside ${min} … ${max}; start again without a token`);
  }
  return value;
}

function tag(method: string, json: Uint8Array, secret: Uint8Array): Buffer {
  // The method name and a separator go first, so one method's token never verifies for another.
  return createHmac("sha256", secret).update(`${method}\n`).update(json).digest().subarray(0, TAG_BYTES);
}
