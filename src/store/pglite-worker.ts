/**
 * The embedded Postgres, on a thread of its own. PGlite runs WASM on whichever thread calls it
 * and never yields while a statement runs, so on the main thread one large statement froze every
 * membership answer (a 1M-id import held the event loop for ~30 s). Here it blocks only this
 * thread. The protocol is one request at a time, in order: the main thread serializes access.
 */
import { readlinkSync } from "node:fs";
import { setPriority } from "node:os";
import { parentPort, workerData } from "node:worker_threads";
import { PGlite, type QueryOptions } from "@electric-sql/pglite";

/** What the main thread asks. */
export type WorkerRequest =
  | { id: number; op: "query"; text: string; params: readonly unknown[] | undefined }
  | { id: number; op: "exec"; text: string }
  | { id: number; op: "copyOut"; text: string; params: readonly unknown[] | undefined }
  | { id: number; op: "close" };

/** What a database error is reduced to on its way back: no SQL text, no parameters. */
export interface WorkerError {
  message: string;
  code?: string;
  constraint?: string;
}

/** The answer to one request (`copyOut` answers with the COPY's bytes, transferred, not copied). */
export type WorkerReply =
  | { id: number; rows: unknown[] }
  | { id: number; bytes: Uint8Array; rowCount: number }
  | { id: number; error: WorkerError };

/** The worker's start-up settings. */
export interface WorkerSettings {
  dataDir: string;
}

/**
 * This thread's nice value. On two busy cores a long statement here (an evaluation's COPY, an
 * import's commit) competed on equal terms with the event loop that answers membership, and the
 * answers' p99 paid for it (bench `evaluate`, --quick, PGlite, load average ~4.5: CheckMembership
 * p99 during evaluations 1.9–3.3× idle at nice 0, 1.3–1.7× at 5, 0.9–1.0× at 10). A lower
 * priority yields the CPU to the hot path when both want it, and costs nothing when a core is
 * free; the price is paid by this thread's own work when other processes keep the cores busy
 * (LoadEvents --quick at load ~7, one run each: 28.7k rows/s at 0, 25.5k at 5, 22.0k at 10), so
 * the middle value.
 */
const NICE = 5;

const BYTEA = 17;
/**
 * bytea parameters go in binary (PGlite sends a parameter that serializes to a Uint8Array in
 * Postgres's binary format, as is), results come back through Node's own hex codec. PGlite's own
 * codecs are JS loops (a hex string built from an array of per-byte strings; a parseInt per
 * byte): 2.4 MB took 456–545 ms to insert and 143–150 ms to select that way, 44–50 ms and
 * 14–15 ms through Node's hex (ad-hoc, in-process PGlite, three rounds). A hex parameter still
 * cost PGlite a JS loop over its characters to measure it, 18% of this thread's busy time while
 * new users went in (bench bulk, PGlite); binary skips the loop and halves the bytes. Change rows,
 * snapshots and the directory's chunks are all bytea.
 */
const BYTEA_CODEC: QueryOptions = {
  serializers: {
    // Typed as returning a string, but PGlite's Bind writes whatever view it is given as binary.
    [BYTEA]: ((value: unknown) => {
      if (!(value instanceof Uint8Array)) throw new TypeError("a bytea parameter must be a Uint8Array");
      return value;
    }) as unknown as (value: unknown) => string,
  },
  // A fresh array each: a small Buffer is a view of Node's shared pool, and posting a view to
  // the main thread would copy the whole pool with it.
  parsers: { [BYTEA]: (text: string) => new Uint8Array(Buffer.from(text.slice(2), "hex")) },
};

/** Lowers this thread's priority (Linux: a thread's id works as a pid for setpriority). */
function lowerPriority(): void {
  try {
    const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, NICE);
  } catch {
    // Not Linux, or not allowed: run at the process's priority.
  }
}

async function serve(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error("pglite-worker must run in a worker thread");
  lowerPriority();
  const { dataDir } = workerData as WorkerSettings;
  let db: PGlite;
  try {
    db = await PGlite.create({ dataDir });
  } catch (error: unknown) {
    port.postMessage({ id: 0, error: reduce(error) } satisfies WorkerReply);
    return;
  }
  port.postMessage({ id: 0, rows: [] } satisfies WorkerReply);
  port.on("message", async (request: WorkerRequest) => {
    try {
      if (request.op === "query") {
        const result = await db.query(request.text, request.params as unknown[] | undefined, BYTEA_CODEC);
        port.postMessage({ id: request.id, rows: result.rows } satisfies WorkerReply);
      } else if (request.op === "copyOut") {
        // `COPY … TO '/dev/blob'`: PGlite hands the output back as a Blob on the result.
        const result = await db.query(request.text, request.params as unknown[] | undefined, BYTEA_CODEC);
        const bytes = new Uint8Array((await result.blob?.arrayBuffer()) ?? new ArrayBuffer(0));
        const reply: WorkerReply = { id: request.id, bytes, rowCount: result.affectedRows ?? 0 };
        port.postMessage(reply, [bytes.buffer]);
      } else if (request.op === "exec") {
        await db.exec(request.text);
        port.postMessage({ id: request.id, rows: [] } satisfies WorkerReply);
      } else {
        await db.close();
        port.postMessage({ id: request.id, rows: [] } satisfies WorkerReply);
        port.close();
      }
    } catch (error: unknown) {
      port.postMessage({ id: request.id, error: reduce(error) } satisfies WorkerReply);
    }
  });
}

function reduce(error: unknown): WorkerError {
  if (typeof error !== "object" || error === null) return { message: String(error) };
  const { message, code, constraint } = error as { message?: unknown; code?: unknown; constraint?: unknown };
  return {
    message: typeof message === "string" ? message : "PGlite failed",
    ...(typeof code === "string" ? { code } : {}),
    ...(typeof constraint === "string" ? { constraint } : {}),
  };
}

void serve();
