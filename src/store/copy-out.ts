/**
 * `COPY … TO STDOUT` read straight off a `pg` connection's socket, each row handed over as a
 * range of the socket's own bytes. pg-copy-streams made a Buffer per row (a slice of each CopyData
 * message), then concatenated them into a stream that a reader split into lines again: at a
 * million ids that bookkeeping cost about a fifth of an evaluation's time on the event loop (bench
 * `evaluate`). Here the protocol messages are walked in place: a row is `bytes[start, end)` of the
 * chunk the socket delivered, its newline left out.
 *
 * The connection is borrowed the way pg-copy-streams borrows it: the query is a pg Submittable
 * that takes the socket's `data` listener from pg's protocol parser while the copy runs, and gives
 * it back, with whatever bytes follow CopyDone (or an ErrorResponse), for pg to finish the query.
 */
import type { Socket } from "node:net";
import { nextSlice, sliceDue } from "../control/time-slice.js";

/** Receives one row (its text-format bytes, without the newline); the next waits for a returned promise. */
export type OnRow = (bytes: Uint8Array, start: number, end: number) => Promise<void> | undefined;

/** The part of pg's Connection a Submittable is handed. */
interface Connection {
  stream: Socket;
  query(text: string): void;
}

const COPY_DATA = 0x64; // 'd'
const COPY_DONE = 0x63; // 'c'
/** Messages the server may send among CopyData (CopyOutResponse, ParameterStatus, NoticeResponse, NotificationResponse). */
const INTERSPERSED = new Set([0x48, 0x53, 0x4e, 0x41]);
const ERROR_RESPONSE = 0x45; // 'E'
const HEADER_BYTES = 5;
const LF = 0x0a;
/** Socket bytes queued before the socket is paused, and the level at which it resumes. */
const HIGH_WATER = 1 << 20;
const LOW_WATER = 1 << 18;
/** Rows between two looks at the clock. */
const ROWS_PER_CHECK = 256;
/** What `walk` returns once the copy is over. */
const DONE = -1;

/**
 * Runs `text` (a COPY … TO STDOUT) on `client` and hands each row to `onRow`, giving the event
 * loop a turn whenever the slice is used up; resolves once the query is complete. When `signal`
 * aborts, rejects with its reason: the caller must then drop the connection (the copy is mid-stream).
 */
export function copyOutRows(
  client: { query(submittable: CopyOutQuery): unknown },
  text: string,
  signal: AbortSignal,
  onRow: OnRow,
): Promise<void> {
  const query = new CopyOutQuery(text);
  client.query(query);
  return query.read(signal, onRow);
}

/** The Submittable: queues the socket's chunks for `read`, which walks the messages in them. */
export class CopyOutQuery {
  private connection: Connection | undefined;
  private pgOnData: ((chunk: Buffer) => void) | undefined;
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private paused = false;
  /** Wakes `read` when a chunk arrives, the query completes or fails. */
  private wake: (() => void) | undefined;
  private failure: unknown;
  private complete = false;
  /** Messages walked, for looking at the clock every so often. */
  private rows = 0;

  constructor(readonly text: string) {}

  /** Called by pg when the query's turn comes. */
  submit(connection: Connection): void {
    this.connection = connection;
    const socket = connection.stream;
    const listeners = socket.listeners("data") as ((chunk: Buffer) => void)[];
    if (listeners.length !== 1) throw new Error(`expected pg's one data listener on the socket, found ${listeners.length}`);
    this.pgOnData = listeners[0];
    socket.removeListener("data", this.pgOnData as (chunk: Buffer) => void);
    socket.on("data", this.onData);
    connection.query(this.text);
  }

  /** pg: the server's CommandComplete, after the copy was handed back. */
  handleCommandComplete(): void {}

  /** pg: the query is over (after CommandComplete). */
  handleReadyForQuery(): void {
    this.complete = true;
    this.wake?.();
  }

  /** pg: an ErrorResponse (handed back to pg's parser), or the connection failed. */
  handleError(error: unknown): void {
    this.failure ??= error;
    this.wake?.();
  }

  private readonly onData = (chunk: Buffer): void => {
    this.queue.push(chunk);
    this.queued += chunk.length;
    if (this.queued > HIGH_WATER && !this.paused) {
      this.paused = true;
      this.connection?.stream.pause();
    }
    this.wake?.();
  };

  /** The next queued chunk, waiting for one; throws once the query failed or the signal aborted. */
  private async next(signal: AbortSignal): Promise<Buffer> {
    for (;;) {
      signal.throwIfAborted();
      if (this.failure !== undefined) throw this.failure;
      const chunk = this.queue.shift();
      if (chunk !== undefined) {
        this.queued -= chunk.length;
        if (this.paused && this.queued < LOW_WATER) {
          this.paused = false;
          this.connection?.stream.resume();
        }
        return chunk;
      }
      await this.until(signal);
    }
  }

  /** Waits for a wake-up or the signal. */
  private until(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        signal.removeEventListener("abort", done);
        this.wake = undefined;
        resolve();
      };
      this.wake = done;
      signal.addEventListener("abort", done, { once: true });
    });
  }

  /** Walks the CopyData messages, hands their rows to `onRow`, then gives the socket back to pg. */
  async read(signal: AbortSignal, onRow: OnRow): Promise<void> {
    // The pieces of a message the last chunks ended inside, joined once the message is whole: a
    // row of megabytes (a directory chunk) spans dozens of chunks, and joining at every chunk
    // copied it again each time.
    const pieces: Buffer[] = [];
    let held = 0;
    for (;;) {
      let chunk = await this.next(signal);
      if (held > 0) {
        const first = pieces[0] as Buffer;
        // A header cut short: what is held is under 5 bytes, so joining it is cheap.
        const head = first.length >= HEADER_BYTES ? first : Buffer.concat([...pieces, chunk.subarray(0, HEADER_BYTES)]);
        const need = head.length < HEADER_BYTES ? chunk.length + 1 : 1 + head.readUInt32BE(1) - held;
        if (need > chunk.length) {
          pieces.push(chunk);
          held += chunk.length;
          continue;
        }
        // Copy just that one message out, never the whole chunk: chunks are large, rows small.
        const message = Buffer.concat([...pieces, chunk.subarray(0, need)]);
        pieces.length = 0;
        held = 0;
        chunk = chunk.subarray(need);
        // Should the copy end with this message, the rest of the chunk is pg's too.
        const at = await this.walk(message, signal, onRow, chunk);
        if (at === DONE) return;
      }
      const at = await this.walk(chunk, signal, onRow);
      if (at === DONE) return;
      if (at < chunk.length) {
        pieces.push(chunk.subarray(at));
        held = chunk.length - at;
      }
    }
  }

  /**
   * Handles the whole messages at the start of `buf`; resolves to the offset of the first one it
   * does not hold in full, or DONE once the copy is over and the socket is pg's again (with the
   * rest of `buf`, then `following`).
   */
  private async walk(buf: Buffer, signal: AbortSignal, onRow: OnRow, following?: Buffer): Promise<number> {
    let p = 0;
    while (p + HEADER_BYTES <= buf.length) {
      const code = buf[p] ?? 0;
      const end = p + 1 + buf.readUInt32BE(p + 1);
      if (code === ERROR_RESPONSE || code === COPY_DONE) {
        // pg parses the error itself; after CopyDone come CommandComplete and ReadyForQuery.
        const after = buf.subarray(code === ERROR_RESPONSE ? p : end);
        await this.handBack(following === undefined ? after : Buffer.concat([after, following]), signal);
        return DONE;
      }
      if (code !== COPY_DATA && !INTERSPERSED.has(code)) throw new Error(`unexpected message ${String.fromCharCode(code)} in COPY OUT`);
      if (end > buf.length) break;
      if (code === COPY_DATA) {
        // One message per row is what Postgres sends; other servers may split rows differently.
        const from = p + HEADER_BYTES;
        const oneRow = this.partial === undefined && buf[end - 1] === LF && buf.indexOf(LF, from) === end - 1;
        const pending = oneRow ? onRow(buf, from, end - 1) : this.splitRows(buf, from, end, onRow);
        let waited = pending !== undefined;
        if (pending !== undefined) await pending;
        if (++this.rows % ROWS_PER_CHECK === 0 && sliceDue()) {
          await nextSlice();
          waited = true;
        }
        // Only while waiting can the signal have aborted.
        if (waited) signal.throwIfAborted();
      }
      p = end;
    }
    return p;
  }

  /** Rows of a CopyData payload that is not exactly one row: lines may span messages. */
  private partial: Buffer | undefined;
  private async splitRows(buf: Buffer, start: number, end: number, onRow: OnRow): Promise<void> {
    let from = start;
    for (let nl = buf.indexOf(LF, from); nl !== -1 && nl < end; nl = buf.indexOf(LF, from)) {
      const line = this.partial === undefined ? buf.subarray(from, nl) : Buffer.concat([this.partial, buf.subarray(from, nl)]);
      this.partial = undefined;
      const pending = onRow(line, 0, line.length);
      if (pending !== undefined) await pending;
      from = nl + 1;
    }
    if (from < end) this.partial = Buffer.concat([this.partial ?? Buffer.alloc(0), buf.subarray(from, end)]);
  }

  /** Gives the socket back to pg with the bytes after the copy, and waits for pg to finish the query. */
  private async handBack(after: Buffer, signal: AbortSignal): Promise<void> {
    const { connection, pgOnData } = this;
    if (connection === undefined || pgOnData === undefined) throw new Error("COPY OUT read before it was submitted");
    const socket = connection.stream;
    socket.removeListener("data", this.onData);
    socket.on("data", pgOnData);
    const queued = this.queue.splice(0);
    this.queued = 0;
    pgOnData(queued.length === 0 ? after : Buffer.concat([after, ...queued]));
    if (this.paused) {
      this.paused = false;
      socket.resume();
    }
    while (!this.complete) {
      signal.throwIfAborted();
      if (this.failure !== undefined) throw this.failure;
      await this.until(signal);
    }
    if (this.partial !== undefined) throw new Error("COPY OUT ended inside a row");
  }
}
