/**
 * One process per PGlite data directory: two embedded Postgres instances writing the same files
 * corrupt them. A lock file holding the owner's pid guards it; a lock left by a dead process is
 * taken over. Writing the lock file is also the early check that the directory is writable.
 */
import { link, mkdir, readFile, unlink, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { StartupError } from "../errors.js";

const LOCK_FILE = "segments.lock";

/** A held data directory; `release` removes the lock file. */
export interface DataDirLock {
  release(): Promise<void>;
}

/** Takes the lock on `dataDir` (created if missing); StartupError if it is unusable or in use. */
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  const dir = resolve(dataDir);
  const path = join(dir, LOCK_FILE);
  // Written aside, then hard-linked into place: the lock appears atomically with its pid in it,
  // so a rival never reads an empty lock file and mistakes it for a stale one.
  const mine = join(dir, `${LOCK_FILE}.${process.pid}`);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(mine, `${process.pid}\n`);
  } catch (error: unknown) {
    throw new StartupError(`DATA_DIR ${dir} is not writable (${codeOf(error)})`, { cause: error });
  }
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await link(mine, path);
        return { release: () => unlink(path).catch(() => undefined) };
      } catch (error: unknown) {
        if (codeOf(error) !== "EEXIST")
          throw new StartupError(`DATA_DIR ${dir}: cannot create ${path} (${codeOf(error)})`, { cause: error });
      }
      const owner = await readOwner(path);
      // Our own pid in the file is a predecessor's lock (a container restarts as pid 1 again).
      if (owner !== undefined && owner !== process.pid && isAlive(owner)) {
        throw new StartupError(`DATA_DIR ${dir} is in use by process ${owner} (lock file ${path}); stop it or use another DATA_DIR`);
      }
      await unlink(path).catch(() => undefined);
    }
    throw new StartupError(`DATA_DIR ${dir}: another process took ${path} while a stale lock was being replaced`);
  } finally {
    await unlink(mine).catch(() => undefined);
  }
}

async function readOwner(path: string): Promise<number | undefined> {
  const text = await readFile(path, "utf8").catch(() => "");
  return /^\d+\n?$/.test(text) ? Number(text.trim()) : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error: unknown) {
    // EPERM: the process exists but belongs to another user.
    return codeOf(error) === "EPERM";
  }
}

function codeOf(error: unknown): string {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === "string" ? code : "unknown error";
}
