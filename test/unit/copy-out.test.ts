/**
 * The COPY OUT reader against crafted protocol bytes: rows arrive however the socket splits
 * them, servers that pack several rows into a message or split one across messages are read
 * alike, and the bytes after the copy go back to pg's parser untouched.
 */
import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { CopyOutQuery } from "../../src/store/copy-out.js";

function message(code: string, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload) : payload;
  const header = Buffer.alloc(5);
  header.write(code, 0, "latin1");
  header.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

/** A socket stand-in: pg's parser is its one data listener until the copy takes over. */
class FakeSocket extends EventEmitter {
  paused = 0;
  pause() {
    this.paused++;
    return this;
  }
  resume() {
    return this;
  }
}

/** Feeds `bytes` to a submitted CopyOutQuery in pieces of `piece` bytes; returns the rows and what pg got back. */
async function run(bytes: Buffer, piece: number): Promise<{ rows: string[]; handedBack: Buffer; sent: string[] }> {
  const socket = new FakeSocket();
  const handed: Buffer[] = [];
  const sent: string[] = [];
  const query = new CopyOutQuery("COPY (SELECT 1) TO STDOUT");
  socket.on("data", (chunk: Buffer) => {
    handed.push(chunk);
    // pg's parser: once it has CommandComplete and ReadyForQuery, the query is done.
    if (Buffer.concat(handed).includes(message("Z", "I"))) query.handleReadyForQuery();
  });
  query.submit({ stream: socket as never, query: (text) => sent.push(text) });
  const rows: string[] = [];
  const reading = query.read(new AbortController().signal, (b, start, end) => {
    rows.push(Buffer.from(b.subarray(start, end)).toString());
    // Sometimes make the reader wait, as a full chunk of ids does.
    return rows.length % 3 === 0 ? new Promise((resolve) => setImmediate(resolve)) : undefined;
  });
  for (let at = 0; at < bytes.length; at += piece) {
    socket.emit("data", bytes.subarray(at, at + piece));
    await new Promise((resolve) => setImmediate(resolve));
  }
  await reading;
  return { rows, handedBack: Buffer.concat(handed), sent };
}

const AFTER = Buffer.concat([message("C", "COPY 4\0"), message("Z", "I")]);

describe("CopyOutQuery", () => {
  it("reads one row per message, however the socket splits the bytes, and hands the rest back", async () => {
    const rows = ["alice", "é😀", "user_12", "x".repeat(300)];
    const bytes = Buffer.concat([
      message("H", Buffer.from([0, 0, 1, 0, 0])),
      ...rows.map((row) => message("d", `${row}\n`)),
      message("N", "notice"),
      message("c"),
      AFTER,
    ]);
    for (const piece of [1, 2, 5, 7, 64, bytes.length]) {
      const result = await run(bytes, piece);
      expect(result.rows, `pieces of ${piece}`).toEqual(rows);
      expect(result.handedBack.equals(AFTER), `pieces of ${piece}`).toBe(true);
      expect(result.sent).toEqual(["COPY (SELECT 1) TO STDOUT"]);
    }
  });

  it("reads rows packed several to a message or split across messages", async () => {
    const bytes = Buffer.concat([
      message("d", "a\nbb\nccc\n"),
      message("d", "dd"),
      message("d", "dd\ne"),
      message("d", "\n"),
      message("c"),
      AFTER,
    ]);
    for (const piece of [1, 3, bytes.length]) expect((await run(bytes, piece)).rows).toEqual(["a", "bb", "ccc", "dddd", "e"]);
  });

  it("hands an ErrorResponse to pg and fails with the error pg reports, however the bytes are split", async () => {
    const error = message("E", "SERROR\0C57014\0\0");
    const bytes = Buffer.concat([message("d", "a\n"), error, message("Z", "I")]);
    for (const piece of [1, 3, 9, bytes.length]) {
      const socket = new FakeSocket();
      const handed: Buffer[] = [];
      const query = new CopyOutQuery("COPY x TO STDOUT");
      socket.on("data", (chunk: Buffer) => {
        handed.push(chunk);
        if (Buffer.concat(handed).length >= error.length) query.handleError(new Error("canceling statement due to statement timeout"));
      });
      query.submit({ stream: socket as never, query: () => undefined });
      const rows: string[] = [];
      const reading = query.read(
        new AbortController().signal,
        (b, start, end) => void rows.push(Buffer.from(b.subarray(start, end)).toString()),
      );
      reading.catch(() => undefined);
      for (let at = 0; at < bytes.length; at += piece) {
        socket.emit("data", bytes.subarray(at, at + piece));
        await new Promise((resolve) => setImmediate(resolve));
      }
      await expect(reading).rejects.toThrow(/statement timeout/);
      expect(rows).toEqual(["a"]);
      expect(Buffer.concat(handed).equals(Buffer.concat([error, message("Z", "I")])), `pieces of ${piece}`).toBe(true);
    }
  });

  it("stops with the signal's reason while waiting for bytes", async () => {
    const socket = new FakeSocket();
    socket.on("data", () => undefined);
    const query = new CopyOutQuery("COPY x TO STDOUT");
    query.submit({ stream: socket as never, query: () => undefined });
    const controller = new AbortController();
    const reading = query.read(controller.signal, () => undefined);
    const reason = new Error("caller went away");
    controller.abort(reason);
    await expect(reading).rejects.toBe(reason);
  });
});
