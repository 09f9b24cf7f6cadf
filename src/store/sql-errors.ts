/**
 * Postgres errors, classified once by SQLSTATE (never by message text), and turned into the
 * domain errors the service understands.
 */
import { UnavailableError } from "../errors.js";

/** The SQLSTATE of a driver error, if it has one. */
export function sqlState(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null || !("code" in error)) return undefined;
  const code = (error as { code: unknown }).code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** A unique constraint was violated. */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  if (sqlState(error) !== "23505") return false;
  return constraint === undefined || (error as { constraint?: unknown }).constraint === constraint;
}

const CONNECTION_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENOTFOUND", "EPIPE", "EHOSTUNREACH"]);

/** The database could not be reached or went away (network errors, SQLSTATE classes 08 and 57P). */
export function isConnectionError(error: unknown): boolean {
  const state = sqlState(error);
  if (state !== undefined) return state.startsWith("08") || state.startsWith("57P");
  if (typeof error !== "object" || error === null) return false;
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && CONNECTION_CODES.has(code);
}

/** SQLSTATEs after which the same call may succeed if retried, with what to tell the caller. */
const RETRYABLE: Record<string, string> = {
  "57014": "a database statement ran past DB_STATEMENT_TIMEOUT_MS and was cancelled",
  "55P03": "a database lock was not granted within DB_LOCK_TIMEOUT_MS",
  "40001": "the transaction conflicted with another one",
  "40P01": "the transaction was chosen as a deadlock victim",
  "53300": "the database has no free connection slots",
};

/** Whether the failure is transient: the database is unreachable, overloaded or timed the statement out. */
export function isRetryable(error: unknown): boolean {
  const state = sqlState(error);
  return isConnectionError(error) || (state !== undefined && state in RETRYABLE);
}

/** An UnavailableError for a failed database call, keeping the driver error as its cause. */
export function unavailable(cause: unknown): UnavailableError {
  const why = RETRYABLE[sqlState(cause) ?? ""] ?? "database unavailable";
  return new UnavailableError(`${why}; nothing was changed, retry later`, { cause });
}
