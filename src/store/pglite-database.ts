/**
 * Database over embedded PGlite (WASM Postgres): the zero-setup default, files in DATA_DIR.
 * PGlite runs in a worker thread (pglite-worker.ts), so its statements never stall the event
 * loop that answers membership; this side only queues requests and awaits replies.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { checkpoint, throwIfOver, untilAborted } from "../control/cancellation.js";
import { KeyedMutex } from "../control/keyed-mutex.js";
import { StartupError, UnavailableError } from "../errors.js";
import { type DataDirLock, lockDataDir } from "./data-dir-lock.js";
import type { Database, Queryable } from "./database.js";
import type { WorkerError, WorkerReply, WorkerRequest, WorkerSettings } from "./pglite-worker.js";

type Pending = { resolve: (reply: Answer) => void; reject: (error: unknown) => void };
type Request =
  | { op: "query"; text: string; params: readonly unknown[] | undefined }
  | { op: "exec"; text: string }
  | { op: "copyOut"; text: string; params: readonly unknown[] | undefined }
  | { op: "close" };
type Answer = unknown[] | CopyOut;

/** One statement with its bound parameters. */
export interface Statement {
  text: string;
  params?: readonly unknown[];
}

/** What a `COPY … TO '/dev/blob'` produced: its text-format bytes and the rows it counted. */
export interface CopyOut {
  bytes: Uint8Array;
  rowCount: number;
}

/** An embedded Postgres in one directory. PGlite is single-connection: statements queue. */
export class PgliteDatabase implements Database {
  readonly kind = "pglite";
  /** The single connection: a transaction holds it from BEGIN to COMMIT, a statement for itself. */
  private readonly connection = new KeyedMutex();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: UnavailableError | undefined;

  private constructor(
    private readonly worker: Worker,
    private readonly lock: DataDirLock,
    /** Longest wait for the single connection before a call gives up (DB_LOCK_TIMEOUT_MS). */
    private readonly waitMs: number,
  ) {
    worker.on("message", (reply: WorkerReply) => this.settle(reply));
    // A worker that dies (WASM abort, out of memory) fails everything in flight and after.
    const fail = (cause: unknown) => {
      this.failure = new UnavailableError("the embedded database stopped; restart the service", { cause });
      for (const { reject } of this.pending.values()) reject(this.failure);
      this.pending.clear();
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`the PGlite worker exited with code ${code}`)));
  }

  /** Locks `dataDir` and opens (creating if needed) the database in it; takes a few seconds. */
  static async open(dataDir: string, waitMs: number): Promise<PgliteDatabase> {
    const lock = await lockDataDir(dataDir);
    let worker: Worker | undefined;
    try {
      if (!existsSync(join(dataDir, "PG_VERSION"))) await createOutOfProcess(dataDir);
      worker = startWorker({ dataDir });
      await workerReady(worker);
      return new PgliteDatabase(worker, lock, waitMs);
    } catch (error: unknown) {
      await worker?.terminate();
      await lock.release();
      throw new StartupError(`cannot open the embedded database in DATA_DIR ${dataDir}`, { cause: error });
    }
  }

  async query<R>(text: string, params?: readonly unknown[]): Promise<R[]> {
    return this.withConnection(async () => (await this.send({ op: "query", text, params })) as R[]);
  }

  async exec(script: string): Promise<void> {
    await this.withConnection(() => this.send({ op: "exec", text: script }));
  }

  /** One transaction on the single connection; see Database.transaction. */
  async transaction<T>(fn: (tx: Queryable) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const tx: Queryable = {
      query: async <R>(text: string, params?: readonly unknown[]) => (await this.send({ op: "query", text, params })) as R[],
      exec: async (script: string) => void (await this.send({ op: "exec", text: script })),
    };
    return this.withConnection(async () => {
      throwIfOver(signal);
      await this.send({ op: "exec", text: "BEGIN" });
      try {
        const result = await fn(tx);
        // The last moment a cancellation or a passed deadline can still undo the change.
        await checkpoint(signal);
        await this.send({ op: "exec", text: "COMMIT" });
        return result;
      } catch (error: unknown) {
        await this.send({ op: "exec", text: "ROLLBACK" }).catch(() => undefined);
        throw error;
      }
    }, signal);
  }

  /**
   * Runs `setup`, then `copy` (a `COPY … TO '/dev/blob'`), in a READ ONLY transaction that always
   * rolls back. When `signal` aborts, the caller gets its reason at once; PGlite cannot interrupt
   * a running statement, so the connection stays busy (other calls queue behind it) until the
   * statement ends and the rollback is done.
   */
  copyOutReadOnly(setup: readonly Statement[], copy: Statement, signal?: AbortSignal): Promise<CopyOut> {
    const work = this.withConnection(async () => {
      await this.send({ op: "exec", text: "BEGIN READ ONLY" });
      try {
        for (const statement of setup) await this.send({ op: "query", text: statement.text, params: statement.params });
        throwIfOver(signal);
        return (await this.send({ op: "copyOut", text: copy.text, params: copy.params })) as CopyOut;
      } finally {
        await this.send({ op: "exec", text: "ROLLBACK" }).catch(() => undefined);
      }
    }, signal);
    if (signal === undefined) return work;
    // Abandoned work still settles later; nobody is waiting for it then. Read-only, so the
    // caller may stop waiting even while it runs.
    work.catch(() => undefined);
    return untilAborted(work, signal);
  }

  async close(): Promise<void> {
    try {
      await this.withConnection(() => this.send({ op: "close" }));
    } finally {
      await this.worker.terminate();
      await this.lock.release();
    }
  }

  /**
   * Runs `work` holding the connection. Waiting for it is bounded by `waitMs` and ends at once
   * when `signal` aborts; a caller that gave up never runs later, when its turn finally comes.
   */
  private withConnection<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const waited = new AbortController();
    const timer = setTimeout(
      () =>
        waited.abort(
          new UnavailableError(
            `the embedded database stayed busy for ${this.waitMs} ms (DB_LOCK_TIMEOUT_MS); nothing was changed, retry later`,
          ),
        ),
      this.waitMs,
    );
    const gaveUp = signal === undefined ? waited.signal : AbortSignal.any([signal, waited.signal]);
    return this.connection.run(
      "connection",
      () => {
        clearTimeout(timer);
        return work();
      },
      gaveUp,
    );
  }

  private send(request: Request): Promise<Answer> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...request, id } satisfies WorkerRequest);
    });
  }

  private settle(reply: WorkerReply): void {
    const pending = this.pending.get(reply.id);
    if (pending === undefined) return;
    this.pending.delete(reply.id);
    if ("error" in reply) pending.reject(asError(reply.error));
    else if ("bytes" in reply) pending.resolve({ bytes: reply.bytes, rowCount: reply.rowCount });
    else pending.resolve(reply.rows);
  }
}

/** A database error as the store's error classification reads it (SQLSTATE in `code`). */
function asError(reduced: WorkerError): Error {
  return Object.assign(new Error(reduced.message), reduced.code === undefined ? {} : { code: reduced.code }, {
    ...(reduced.constraint === undefined ? {} : { constraint: reduced.constraint }),
  });
}

/**
 * Creates the database in an empty `dataDir` in a child process. initdb grows PGlite's WASM heap
 * to ~800 MB, which a process keeps (a worker thread that ran it leaves ~90 MB behind too): made
 * elsewhere, a first start holds what every later start holds (~350 MB RSS).
 */
async function createOutOfProcess(dataDir: string): Promise<void> {
  const script = `const { PGlite } = await import(process.argv[2]);
    const db = await PGlite.create({ dataDir: process.argv[1] });
    await db.close();`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script, dataDir, import.meta.resolve("@electric-sql/pglite")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-2_000);
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", resolve);
  });
  if (code !== 0) throw new Error(`creating the database exited with code ${code}: ${stderr.trim()}`);
}

/** Resolves once `worker` has opened its database; rejects with why it could not. */
function workerReady(worker: Worker): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    worker.once("message", (reply: WorkerReply) => ("error" in reply ? reject(asError(reply.error)) : resolve()));
    worker.once("error", reject);
  });
}

/**
 * The worker, from the compiled JavaScript beside this file — or, when this file is TypeScript
 * run from source (tests, tsx), through tsx's loader, registered inside the worker first.
 */
function startWorker(settings: WorkerSettings): Worker {
  const here = import.meta.url;
  if (!here.endsWith(".ts")) return new Worker(new URL("./pglite-worker.js", here), { workerData: settings });
  const tsxRoot = join(createRequire(here).resolve("tsx/package.json"), "..");
  const api = pathToFileURL(join(tsxRoot, "dist/esm/api/index.mjs")).href;
  const entry = new URL("./pglite-worker.ts", here).href;
  const bootstrap = `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(bootstrap, { eval: true, workerData: settings });
}
