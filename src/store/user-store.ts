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

  /**
   * Hands every chunk that ends after uid `bound` to `onChunk`, in uid order, streamed by one
   * `COPY … TO STDOUT` (start-up reads the whole directory this way). False, having read
   * nothing, where the store cannot COPY out (PGlite): page through chunksEndingAfter instead.
   * The rows come as bytes, so no id is decoded to a string and encoded back: at 10M users that
   * round trip was 2.2 s of start-up's critical path.
   */
  async copyChunks(bound: number, onChunk: (chunk: UserChunk) => Promise<void>): Promise<boolean> {
    if (this.db.copyOut === undefined) return false;
    if (!Number.isSafeInteger(bound) || bound < 0) throw new RangeError(`uid bound ${bound} is not a non-negative integer`);
    // COPY takes no parameters; the bound is an integer checked above.
    const select = `SELECT first_uid, id_count, encode(lengths, 'hex'), ids FROM user_chunks WHERE first_uid + id_count > ${bound} ORDER BY first_uid`;
    await this.db.copyOut(`COPY (${select}) TO STDOUT`, (bytes, start, end) => onChunk(parseChunkRow(bytes, start, end)));
    return true;
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
    // The ids go as bytes and become text on the server: decoding them to a string here cost
    // ~90 ns a user on the new-user path (profile, 10M users).
    await tx.query("INSERT INTO user_chunks (first_uid, id_count, lengths, ids) VALUES ($1, $2, $3, convert_from($4, 'UTF8'))", [
      chunk.firstUid,
      chunk.count,
      chunk.lengths,
      chunk.ids,
    ]);
  }
}

const TAB = 0x09;
const BACKSLASH = 0x5c;
/** What COPY's text format writes after a backslash for each character it escapes (anything else stands for itself). */
const UNESCAPED: Record<number, number> = { 98: 0x08, 102: 0x0c, 110: 0x0a, 114: 0x0d, 116: 0x09, 118: 0x0b };

/** One `first_uid, id_count, hex lengths, ids` row of COPY's text format, as a chunk. */
function parseChunkRow(bytes: Uint8Array, start: number, end: number): UserChunk {
  const row = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const field = (from: number) => {
    const tab = row.indexOf(TAB, from);
    if (tab === -1 || tab >= end) throw new Error("user_chunks: a COPY row has fewer than four fields");
    return tab;
  };
  const afterUid = field(start);
  const afterCount = field(afterUid + 1);
  const afterLengths = field(afterCount + 1);
  return {
    firstUid: Number(row.toString("latin1", start, afterUid)),
    count: Number(row.toString("latin1", afterUid + 1, afterCount)),
    lengths: Buffer.from(row.toString("latin1", afterCount + 1, afterLengths), "hex"),
    ids: unescapeCopyText(row, afterLengths + 1, end),
  };
}

/** A text field of COPY's text format as its bytes: the row's own bytes when nothing is escaped (the usual case). */
function unescapeCopyText(row: Buffer, start: number, end: number): Uint8Array {
  let next = row.indexOf(BACKSLASH, start);
  if (next === -1 || next >= end) return row.subarray(start, end);
  const out = Buffer.allocUnsafe(end - start);
  let length = 0;
  let from = start;
  while (next !== -1 && next < end) {
    length += row.copy(out, length, from, next);
    const escaped = row[next + 1] ?? 0;
    out[length++] = UNESCAPED[escaped] ?? escaped;
    from = next + 2;
    next = row.indexOf(BACKSLASH, from);
  }
  length += row.copy(out, length, from, end);
  return out.subarray(0, length);
}
