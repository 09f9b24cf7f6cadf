/**
 * A Redis connection for batch loads that sends commands already encoded as RESP and reads each
 * reply as an array of small integers without making a JavaScript value per element: what
 * `redis-benchmark` does, so the figure is Redis's, not the load process's. ioredis built each
 * 10,000-id SMISMEMBER and parsed each 10,000-element reply in JavaScript, on the same two cores
 * as the servers under test; our service's load is sent as encoded request bytes too
 * (`encoded.ts`). Replies come back in the order commands were sent (RESP pipelining).
 */
import { connect, type Socket } from "node:net";

const CR = 0x0d;

/** `args` as one RESP command (an array of bulk strings). */
export function encodeCommand(args: readonly string[]): Buffer {
  const parts = [`*${args.length}\r\n`];
  for (const arg of args) parts.push(`$${Buffer.byteLength(arg)}\r\n${arg}\r\n`);
  return Buffer.from(parts.join(""));
}

/** One connection; `send` resolves with the element count of the command's array reply. */
export class RawRedis {
  private readonly waiting: { resolve: (count: number) => void; reject: (error: Error) => void }[] = [];
  private unread: Buffer = Buffer.alloc(0);

  private constructor(private readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => this.receive(chunk));
    socket.on("error", (error) => this.failAll(error));
    socket.on("close", () => this.failAll(new Error("Redis connection closed")));
  }

  /** Connects to `url` (redis://host:port). */
  static open(url: string): Promise<RawRedis> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect({ host: hostname, port: Number(port || 6379), noDelay: true });
      socket.once("error", reject);
      socket.once("connect", () => {
        socket.off("error", reject);
        resolve(new RawRedis(socket));
      });
    });
  }

  /** Sends an encoded command whose reply is an array of integers (SMISMEMBER's). */
  send(command: Buffer): Promise<number> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.socket.write(command);
    });
  }

  /** Closes the connection. */
  close(): void {
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    this.unread = this.unread.length === 0 ? chunk : Buffer.concat([this.unread, chunk]);
    try {
      for (let used = this.reply(); used > 0; used = this.reply()) this.unread = this.unread.subarray(used);
    } catch (error: unknown) {
      // A reply this reader does not understand leaves the stream unreadable from there on.
      this.failAll(error as Error);
      this.socket.destroy();
    }
  }

  /** Settles the oldest command if its whole reply is here; returns the bytes it took (0: not yet). */
  private reply(): number {
    const bytes = this.unread;
    const eol = bytes.indexOf(CR);
    if (eol === -1 || bytes.length < eol + 2) return 0;
    const line = bytes.toString("latin1", 1, eol);
    const next = this.waiting[0];
    if (bytes[0] === 0x2d /* - */) {
      this.waiting.shift();
      next?.reject(new Error(`Redis: ${line}`));
      return eol + 2;
    }
    if (bytes[0] !== 0x2a /* * */) throw new Error(`Redis: unexpected reply ${JSON.stringify(bytes.toString("latin1", 0, 32))}`);
    // Each element of an SMISMEMBER reply is ":0\r\n" or ":1\r\n", four bytes.
    const count = Number(line);
    const end = eol + 2 + 4 * count;
    if (bytes.length < end) return 0;
    if (count > 0 && (bytes[eol + 2] !== 0x3a || bytes[end - 1] !== 0x0a))
      throw new Error("Redis: a reply that is not an array of 0/1 integers");
    this.waiting.shift();
    next?.resolve(count);
    return end;
  }

  private failAll(error: Error): void {
    for (const waiter of this.waiting.splice(0)) waiter.reject(error);
  }
}
