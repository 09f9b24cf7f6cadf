/**
 * LoadEvents on both stores: NDJSON and CSV split anywhere across messages load every valid line,
 * report the bad ones by line number, and a cancelled stream appends nothing. Then the sample data
 * answers "viewed pricing in the last 30 days and has not purchased" through the analytics runner.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sampleEventLines } from "../../scripts/sample-events.js";
import { openDatabase } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { EventFormat, type LoadEventsRequestSchema } from "../../src/gen/segments/v1/segment_service_pb.js";
import { createLogger } from "../../src/logging.js";
import { openAnalyticsSource } from "../../src/store/analytics-source.js";
import { startService, type TestService } from "../support/service.js";
import { failure } from "../support/status.js";
import { STORES, type TestStore } from "../support/stores.js";

type LoadMessage = MessageInitShape<typeof LoadEventsRequestSchema>;
const NOW = new Date("2026-03-01T00:00:00Z");
const SAMPLE = { users: 2_000, seed: 7, now: NOW, days: 90 };

/** `text` as messages of `size` bytes, cutting lines (and UTF-8 sequences) anywhere. */
function messages(text: string, format: EventFormat, size: number): LoadMessage[] {
  const bytes = Buffer.from(text);
  const out: LoadMessage[] = [];
  for (let from = 0; from < bytes.length; from += size)
    out.push({ format: from === 0 ? format : EventFormat.UNSPECIFIED, text: bytes.subarray(from, from + size) });
  return out;
}

describe.each(STORES)("LoadEvents on $name", (kind) => {
  let store: TestStore;
  let service: TestService;
  let sampleCount = 0;

  beforeAll(async () => {
    store = await kind.create();
    service = await startService(store);
  });
  afterAll(async () => {
    await service?.stop().catch(() => undefined);
    await store?.drop();
  });

  it("loads sample NDJSON split at arbitrary bytes, and reports bad lines by number", async () => {
    const lines = [...sampleEventLines(SAMPLE)];
    sampleCount = lines.length;
    const bad = [
      "not json",
      '{"user_id":"","name":"x","ts":"2026-01-01T00:00:00Z"}',
      '{"user_id":"u","name":"x","ts":"2026-02-30T00:00:00Z"}',
      '{"user_id":"u","name":"x","ts":"2026-01-01T00:00:00"}',
      '{"user_id":"u","name":"x","ts":"2026-01-01T00:00:00Z","properties":[1]}',
      `{"user_id":"${"é".repeat(129)}","name":"x","ts":"2026-01-01T00:00:00Z"}`,
      '{"user_id":"u\\u0000","name":"x","ts":"2026-01-01T00:00:00Z"}',
    ];
    // Bad lines after sample line 10, a blank line (counted, not rejected), and no final newline.
    const text = [...lines.slice(0, 10), ...bad, "", ...lines.slice(10)].join("\r\n");
    const result = await service.segments.loadEvents(messages(text, EventFormat.NDJSON, 65_537));
    expect(Number(result.loaded)).toBe(sampleCount);
    expect(result.rejectedLines.map((l) => [Number(l.line), l.reason])).toEqual([
      [11, "not valid JSON"],
      [12, "user_id is missing or empty"],
      [13, 'ts "2026-02-30T00:00:00Z" is not an ISO-8601 time with an offset'],
      [14, 'ts "2026-01-01T00:00:00" is not an ISO-8601 time with an offset'],
      [15, "properties is not a JSON object"],
      [16, "user_id is longer than 256 bytes"],
      [17, "user_id contains U+0000"],
    ]);
    expect(Number(result.rejected)).toBe(bad.length);
  });

  it("loads CSV with a header in any column order and quoted JSON properties", async () => {
    const csv = [
      "ts,user_id,name,properties",
      '2026-02-20T10:00:00+01:00,"csv,1",signup,"{""plan"":""free""}"',
      "2026-02-21T10:00:00Z,csv-2,purchase,",
      "2026-02-21T10:00:00Z,csv-3",
      '2026-02-21T10:00:00Z,"csv-4,signup',
    ].join("\n");
    const result = await service.segments.loadEvents(messages(csv, EventFormat.CSV, 7));
    expect(Number(result.loaded)).toBe(2);
    expect(result.rejectedLines.map((l) => [Number(l.line), l.reason])).toEqual([
      [4, "name is missing or empty"],
      [5, "unterminated quoted field"],
    ]);
  });

  it("refuses a stream without a format, and a cancelled stream appends nothing", async () => {
    const missing = await failure(service.segments.loadEvents([{ text: Buffer.from("{}\n") }]));
    expect(missing.code).toBe(status.INVALID_ARGUMENT);
    expect(missing.details).toMatch(/format/);
    const abort = new AbortController();
    const lines = [...sampleEventLines({ ...SAMPLE, users: 500, seed: 99 })].join("\n");
    async function* trickle(): AsyncGenerator<LoadMessage> {
      const all = messages(lines, EventFormat.NDJSON, 16_384);
      for (const [i, message] of all.entries()) {
        if (i === Math.floor(all.length / 2)) {
          // Let the server read what was sent, then cancel.
          await new Promise((resolve) => setTimeout(resolve, 200));
          abort.abort();
        }
        yield message;
      }
    }
    const cancelled = await failure(service.segments.loadEvents(trickle(), { signal: abort.signal }));
    expect(cancelled.code).toBe(status.CANCELLED);
  });

  it("holds exactly the loaded events, and the sample answers the pricing question", async () => {
    await service.stop();
    const config = loadConfig(store.env);
    const log = createLogger({ level: "silent" });
    const db = await openDatabase(config, log);
    const source = openAnalyticsSource({
      db,
      databaseUrl: config.databaseUrl,
      analyticsDatabaseUrl: undefined,
      analyticsRole: undefined,
      log,
    });
    try {
      // The cancelled load may have finished on the server after the client gave up: give it time.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const [counts] = await db.query<{ n: number; staged: number }>(
        "SELECT (SELECT count(*)::int FROM events) AS n, (SELECT count(*)::int FROM events_staging) AS staged",
      );
      expect(counts).toEqual({ n: sampleCount + 2, staged: 0 });
      const ids: string[] = [];
      const { rows } = await source.runUserIdQuery(
        {
          text: `SELECT DISTINCT user_id FROM events e WHERE name = 'pricing_view' AND ts >= $1::timestamptz - interval '30 days'
                 AND NOT EXISTS (SELECT 1 FROM events p WHERE p.user_id = e.user_id AND p.name = 'purchase')`,
          params: [NOW],
        },
        { timeoutMs: 30_000, rowCap: 100_000 },
        (chunk) => {
          ids.push(...chunk);
        },
      );
      // A sensible answer: some, but far from all, of the 2,000 users.
      expect(rows).toBe(ids.length);
      expect(rows).toBeGreaterThan(50);
      expect(rows).toBeLessThan(1_000);
    } finally {
      await source.close();
      await db.close();
    }
  });
});
