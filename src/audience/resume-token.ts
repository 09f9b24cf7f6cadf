/**
 * StreamAudience resume tokens: where a stream stopped, in the snapshot it was reading. Signed
 * like page tokens (src/service/page-token.ts), so they come back only as this service issued
 * them; the lists digest ties a token to the include and exclude lists it was issued for.
 */
import { InvalidArgumentError } from "../errors.js";
import { signPageToken, type TokenField, tokenInteger, verifyPageToken } from "../service/page-token.js";

const METHOD = "StreamAudience";
/** Up to 200 segment versions: longer than a page token may be. */
const WHERE: TokenField = { field: "resume_token", maxChars: 8_192 };
const MAX_UID = 2 ** 32 - 2;

/** A position in an audience snapshot. */
export interface ResumePoint {
  /** Digest of the include and exclude lists. */
  lists: string;
  /** The version read of every distinct segment, include first, in request order. */
  versions: number[];
  /** EVERYONE's snapshot: users with a uid below this. */
  everyoneBound: number;
  /** The last uid delivered; −1 before the first. */
  after: number;
}

/** The token resuming after `point`. */
export function resumeToken(point: ResumePoint, secret: Uint8Array): string {
  return signPageToken(METHOD, { l: point.lists, v: point.versions, b: point.everyoneBound, a: point.after }, secret);
}

/** The point a token names, checked against the lists of the resumed request and its segment count. */
export function readResumeToken(token: string, secret: Uint8Array, lists: string, segments: number): ResumePoint {
  const payload = verifyPageToken(token, METHOD, secret, WHERE);
  if (payload.l !== lists) {
    throw new InvalidArgumentError(WHERE.field, "was issued for other include or exclude segments; resume with the same lists");
  }
  const versions = payload.v;
  if (!Array.isArray(versions) || versions.length !== segments || !versions.every((v) => Number.isSafeInteger(v) && v >= 0)) {
    throw new InvalidArgumentError(WHERE.field, "is not a token StreamAudience returned; start again without a token");
  }
  return {
    lists,
    versions: versions as number[],
    everyoneBound: tokenInteger(payload, "b", 0, MAX_UID + 1, WHERE.field),
    after: tokenInteger(payload, "a", -1, MAX_UID, WHERE.field),
  };
}
