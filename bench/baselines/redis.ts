/**
 * Baseline: "just put the set in Redis". One SET of external id strings per segment, loaded
 * with pipelined SADDs; memory read from INFO. Keys are namespaced per run and deleted after.
 */
import { Redis } from "ioredis";
import { userId } from "../lib/dataset.js";

const SADD_IDS = 10_000;

/** A Redis server holding the benchmark's sets. */
export class RedisBaseline {
  readonly prefix = `segments-bench:${process.pid}:`;

  private constructor(
    private readonly redis: Redis,
    readonly url: string,
  ) {}

  /** Connects, or returns why the baseline is skipped. */
  static async connect(url: string): Promise<RedisBaseline | string> {
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2_000 });
    redis.on("error", () => undefined);
    try {
      await redis.connect();
      await redis.ping();
      return new RedisBaseline(redis, url);
    } catch (error: unknown) {
      redis.disconnect();
      return `Redis at ${url} unreachable (${error instanceof Error ? error.message : String(error)})`;
    }
  }

  /** The key of a segment's set. */
  key(segment: string): string {
    return `${this.prefix}${segment}`;
  }

  /** SADDs every member (user numbers, in batches) as external id strings; returns elapsed ms. */
  async load(segment: string, batches: Iterable<number[]>, seed: number): Promise<number> {
    let elapsed = 0;
    for (const batch of batches) {
      // Ids are made before the clock starts: the bench's id generator is not Redis's cost.
      const ids = batch.map((n) => userId(seed, n));
      const started = performance.now();
      const pipeline = this.redis.pipeline();
      for (let i = 0; i < ids.length; i += SADD_IDS) pipeline.sadd(this.key(segment), ...ids.slice(i, i + SADD_IDS));
      await pipeline.exec();
      elapsed += performance.now() - started;
    }
    return elapsed;
  }

  /** SDIFFSTORE into `dest`; returns elapsed ms. */
  async diffStore(dest: string, from: string, minus: string): Promise<number> {
    const started = performance.now();
    await this.redis.sdiffstore(this.key(dest), this.key(from), this.key(minus));
    return performance.now() - started;
  }

  /** SUNIONSTORE of `include` then SDIFFSTORE of `exclude` into `dest`; returns the audience size. */
  async audienceStore(dest: string, include: readonly string[], exclude: string): Promise<number> {
    await this.redis.sunionstore(
      this.key(`${dest}:union`),
      include.map((k) => this.key(k)),
    );
    return this.redis.sdiffstore(this.key(dest), this.key(`${dest}:union`), this.key(exclude));
  }

  /** The audience counted: SUNIONSTORE + SDIFFSTORE + SCARD. */
  async audienceCount(include: readonly string[], exclude: string): Promise<number> {
    await this.audienceStore("audience", include, exclude);
    return this.redis.scard(this.key("audience"));
  }

  /** The audience read out: SUNIONSTORE + SDIFFSTORE, then SSCAN with COUNT `batch` to the end; returns the ids read. */
  async audienceScan(include: readonly string[], exclude: string, batch: number): Promise<number> {
    await this.audienceStore("audience", include, exclude);
    let cursor = "0";
    let read = 0;
    do {
      const [next, ids] = await this.redis.sscan(this.key("audience"), cursor, "COUNT", batch);
      read += ids.length;
      cursor = next;
    } while (cursor !== "0");
    return read;
  }

  /** Deletes some sets (UNLINK: freed off Redis's main thread). */
  async drop(...segments: string[]): Promise<void> {
    await this.redis.unlink(...segments.map((s) => this.key(s)));
  }

  /** `used_memory` from INFO memory, in bytes. */
  async usedMemory(): Promise<number> {
    const info = await this.redis.info("memory");
    const match = /^used_memory:(\d+)/m.exec(info);
    if (match?.[1] === undefined) throw new Error("INFO memory has no used_memory");
    return Number(match[1]);
  }

  /** Deletes this run's keys and disconnects. */
  async close(): Promise<void> {
    const keys = await this.redis.keys(`${this.prefix}*`);
    if (keys.length > 0) await this.redis.unlink(...keys);
    this.redis.disconnect();
  }
}
