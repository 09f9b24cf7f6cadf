/**
 * SQL of the user directory: `user_chunks`, one row per batch of users that got their uids
 * together (migration 0008). A row holds `id_count` consecutive uids from `first_uid`: their ids
 * concatenated in uid order (text) and each one's byte length (uint16 LE; 0 = a uid never
 * assigned). Chunks are contiguous: each new one starts where the last ended.
 *
 * Why not a row per user: the unique index on a text column was ~70% of the cost of writing new
 * users (COPY of 1M users: 1.49M rows/s with no index, 223k with it), and uniqueness is the
 * directory's job anyway. New uids are handed out under one cluster-wide advisory lock, by a
 * process that first reads every chunk committed since it last looked (`chunksEndingAfter`), so
 * two processes can never give one id two uids.
 */
import type { Database, Queryable } from "./database.js";

/** Users that got their uids in one batch: uids `firstUid … firstUid + count − 1`. */
export interface UserChunk {
  firstUid: number;
  count: number;
  /** Per uid, its id's length in bytes (uint16 little-endian; 0 = never assigned). */
  lengths: Uint8Array;
  /** The ids' UTF-8 bytes, back to back in uid order. */
  ids: Uint8Array;
}

interface ChunkRow {
  firstUid: number;
  count: number;
  lengths: Uint8Array;
  ids: string;
}

const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** The advisory lock key serializing uid assignment across every process on one database. */
const NEW_USERS_LOCK = 0x5e6d_0001;
/** Chunks per page when reading: bounded bytes per round trip. */
const PAGE_CHUNKS = 16;

/** Reads and writes the directory's chunks. */
export class UserStore {
  constructor(private readonly db: Database) {}

  /**
   * Inside a transaction: waits for the right to assign new uids, held until COMMIT or ROLLBACK,
   * so the chunk this transaction writes is visible before the next assigner reads.
   */
  async lockNewUsers(tx: Queryable): Promise<void> {
    await tx.query("SELECT pg_advisory_xact_lock($1)", [NEW_USERS_LOCK]);
  }

  /** Up to a page of chunks that end after uid `bound` (all of them for bound 0), in uid order. */
  async chunksEndingAfter(bound: number, q: Queryable = this.db): Promise<UserChunk[]> {
    const rows = await q.query<ChunkRow>(
      `SELECT first_uid::float8 AS "firstUid", id_count AS count, lengths, ids FROM user_chunks
       WHERE first_uid + id_count > $1 ORDER BY first_uid LIMIT $2`,
      [bound, PAGE_CHUNKS],
    );
    return rows.map(({ firstUid, count, lengths, ids }) => ({ firstUid, count, lengths, ids: Buffer.from(ids, "utf8") }));
  }

  /** How many uids the chunks cover (an upper bound on the users: gaps count too). */
  async count(): Promise<number> {
    const rows = await this.db.query<{ n: number }>("SELECT coalesce(sum(id_count), 0)::float8 AS n FROM user_chunks");
    return rows[0]?.n ?? 0;
  }

  /** Where the next chunk starts: one past the highest uid ever assigned. */
  async end(q: Queryable): Promise<number> {
    const rows = await q.query<{ end: number }>('SELECT coalesce(max(first_uid + id_count), 0)::float8 AS "end" FROM user_chunks');
    return rows[0]?.end ?? 0;
  }

  /** Inside the transaction holding lockNewUsers: stores one chunk of new users. */
  async insertChunk(tx: Queryable, chunk: UserChunk): Promise<void> {
    await tx.query("INSERT INTO user_chunks (first_uid, id_count, lengths, ids) VALUES ($1, $2, $3, $4)", [
      chunk.firstUid,
      chunk.count,
      chunk.lengths,
      decoder.decode(chunk.ids),
    ]);
  }
}
