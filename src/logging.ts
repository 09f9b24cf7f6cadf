/**
 * Logging: one pino set-up for the process and the tests, an `err` serializer that keeps data out
 * of logs, and an exit path that never waits on a log sink that cannot take more.
 */
import pino, { type DestinationStream, type Logger } from "pino";

/** Longest message or stack kept; a driver message can quote a whole statement. */
const MAX_TEXT = 2_000;
/** Deepest cause chain followed; chains can be cyclic. */
const MAX_DEPTH = 5;
/** Most sub-errors of an AggregateError kept (pg connecting to every address of a host). */
const MAX_ERRORS = 5;

/** What an error becomes in a log line: no SQL text, parameters, row detail or member ids. */
export interface SerializedError {
  type: string;
  message: string;
  stack?: string;
  /** SQLSTATE, or a Node error code such as ECONNREFUSED. */
  code?: string;
  errors?: SerializedError[];
  cause?: SerializedError;
}

/**
 * pino's `err` serializer. pino's own copies every enumerable property, and driver errors carry
 * data: PGlite's have `query` and `params` (a 100k-id array becomes a megabyte log line), pg's
 * `detail` quotes the conflicting values. So only an allow-list of fields is kept.
 */
export function serializeError(error: unknown, depth = 0): SerializedError {
  if (!(error instanceof Error)) {
    // PGlite sometimes throws plain objects; name their shape, never dump their contents.
    const message =
      typeof error === "object" && error !== null && typeof (error as { message?: unknown }).message === "string"
        ? (error as { message: string }).message
        : typeof error === "object" && error !== null
          ? `non-Error ${error.constructor?.name ?? "object"} thrown`
          : String(error);
    return { type: typeof error, message: clip(message), ...codeOf(error) };
  }
  const serialized: SerializedError = { type: error.constructor?.name ?? error.name, message: clip(error.message), ...codeOf(error) };
  if (error.stack !== undefined) serialized.stack = clip(error.stack);
  if (error instanceof AggregateError && depth < MAX_DEPTH) {
    serialized.errors = (error.errors as unknown[]).slice(0, MAX_ERRORS).map((inner) => serializeError(inner, depth + 1));
  }
  if (error.cause !== undefined && depth < MAX_DEPTH) serialized.cause = serializeError(error.cause, depth + 1);
  return serialized;
}

/** The error and its causes as text, one per line: for stderr when there is no logger yet. */
export function describeError(error: unknown): string {
  const lines: string[] = [];
  for (let current: SerializedError | undefined = serializeError(error); current !== undefined; current = current.cause) {
    const code = current.code === undefined ? "" : ` [${current.code}]`;
    lines.push(
      `${lines.length === 0 ? "" : "caused by: "}${current.type === "object" ? "" : `${current.type}: `}${current.message}${code}`,
    );
    for (const inner of current.errors ?? []) lines.push(`  - ${inner.message}${inner.code === undefined ? "" : ` [${inner.code}]`}`);
  }
  return lines.join("\n");
}

/** A pino logger with the safe `err` serializer (tests pass their own level and destination). */
export function createLogger(options: pino.LoggerOptions = {}, destination?: DestinationStream): Logger {
  const settings: pino.LoggerOptions = { ...options, serializers: { ...options.serializers, err: serializeError } };
  return destination === undefined ? pino(settings) : pino(settings, destination);
}

/** The process's log sink on stdout, and how to exit without hanging on it. */
export interface ProcessLog {
  log: Logger;
  /** Gives buffered lines up to `waitMs` to reach stdout, then exits with `code`. */
  exit(code: number, waitMs?: number): Promise<never>;
}

/**
 * Logs to stdout through an asynchronous SonicBoom. pino registers a process-exit hook that
 * calls the sink's flushSync, and sonic-boom's flushSync retries every error but EAGAIN in an
 * Atomics.wait loop: with the stdout reader gone (EPIPE) the process never exits, and a second
 * signal cannot even run. So write errors drop logging for good, and exit destroys the sink
 * (which the hook skips) after a bounded flush.
 */
export function createProcessLog(options: pino.LoggerOptions): ProcessLog {
  const sink = pino.destination({ dest: 1, sync: false });
  let broken = false;
  let closed = false;
  sink.once("close", () => {
    closed = true;
  });
  // pino's own handler covers EPIPE only; any write error means stdout is unusable: stop logging.
  sink.on("error", () => {
    broken = true;
    sink.write = () => true;
  });
  const log = createLogger(options, sink);
  return {
    log,
    exit: async (code, waitMs = 1_000) => {
      if (!broken && !closed) {
        // end() writes what is buffered, then emits close; a stuck reader gets waitMs at most.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, waitMs);
          const done = () => {
            clearTimeout(timer);
            resolve();
          };
          sink.once("close", done).once("error", done);
          try {
            sink.end();
          } catch {
            done();
          }
        });
      }
      // A destroyed sink is skipped by pino's exit hook, so process.exit cannot block on it
      // (destroy returns at once when end() already closed it).
      sink.destroy();
      process.exit(code);
    },
  };
}

function clip(text: string): string {
  return text.length <= MAX_TEXT ? text : `${text.slice(0, MAX_TEXT)}… (${text.length - MAX_TEXT} more characters)`;
}

function codeOf(error: unknown): { code?: string } {
  if (typeof error !== "object" || error === null) return {};
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && code.length <= 32 ? { code } : {};
}
