/**
 * A failed call changes nothing (issue 8, A): a cancelled stream, a unary write past its deadline,
 * a write that gave up while queued behind a lock, and writes against a hung database all leave
 * the segment exactly as it was — on both stores, checked after the server has finished the call.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RetryInfoSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import { SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { type ImportMembersRequestSchema, ImportMode } from "../../src/gen/segments/v1/segment_service_pb.js";
import { finishedCalls, untilFinished } from "../support/calls.js";
import { startService, type TestService, useService } from "../support/service.js";
import { detail, failure } from "../support/status.js";
import { STORES, type TestStore } from "../support/stores.js";
import { startProxy, type TcpProxy } from "../support/tcp-proxy.js";

type ImportMessage = MessageInitShape<typeof ImportMembersRequestSchema>;
const IMPORT = "segments.v1.SegmentService/ImportMembers";
const ADD = "segments.v1.SegmentService/AddMembers";
const ids = (prefix: string, from: number, to: number) => Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`);
const never = new Promise<never>(() => undefined);

/** The status code a call ended with ("OK" when it succeeded). */
const outcome = (call: Promise<unknown>) =>
  call.then(
    () => "OK" as const,
    (error: { code: status }) => error.code,
  );

describe.each(STORES)("cancellation and deadlines on $name", (kind) => {
  const t = useService(kind);
  const staticSegment = async (name: string, members = 0) => {
    const id = (await t.service.segments.createSegment({ name, type: SegmentType.STATIC })).segment?.id ?? "";
    if (members > 0) await t.service.segments.addMembers({ segmentId: id, userIds: ids(`${name}_`, 0, members) });
    return id;
  };
  const segment = async (id: string) => (await t.service.segments.getSegment({ segmentId: id })).segment;

  it("a cancelled ImportMembers that never half-closed applies nothing", async () => {
    const id = await staticSegment("Cancelled replace", 10_000);
    const before = await segment(id);
    for (let attempt = 0; attempt < 10; attempt++) {
      const done = finishedCalls(t.service, IMPORT);
      const abort = new AbortController();
      // One message, then silence: the client never half-closes before it cancels.
      async function* messages(): AsyncGenerator<ImportMessage> {
        yield { segmentId: id, mode: ImportMode.REPLACE, userIds: ids(`r${attempt}_`, 0, 1_000) };
        await never;
      }
      const call = failure(t.service.segments.importMembers(messages(), { signal: abort.signal }));
      setTimeout(() => abort.abort(), 20 + attempt * 15);
      expect((await call).code).toBe(status.CANCELLED);
      await untilFinished(t.service, IMPORT, done + 1);
    }
    expect(await segment(id)).toMatchObject({ version: before?.version, memberCount: 10_000n });
  });

  it("an AddMembers whose deadline passes mid-write applies nothing; one that finishes in time applies all", async () => {
    const id = await staticSegment("Deadlines");
    const everyone = (await t.service.segments.createSegment({ name: "Deadline users", type: SegmentType.EVERYONE })).segment?.id ?? "";
    const started = performance.now();
    await t.service.segments.addMembers({ segmentId: id, userIds: ids("calibrate_", 0, 100_000) });
    const runMs = performance.now() - started;
    let exceeded = 0;
    // The small fractions last: a loaded machine can make the calibration call slow and the later ones fast.
    for (const [k, fraction] of [0.2, 0.5, 0.8, 0.1, 0.05].entries()) {
      const before = await segment(id);
      const users = (await segment(everyone))?.memberCount ?? 0n;
      const done = finishedCalls(t.service, ADD);
      const deadline = new Date(Date.now() + runMs * fraction);
      const code = await outcome(t.service.segments.addMembers({ segmentId: id, userIds: ids(`d${k}_`, 0, 100_000) }, { deadline }));
      await untilFinished(t.service, ADD, done + 1);
      const after = await segment(id);
      if (code === "OK") {
        expect(after).toMatchObject({ version: (before?.version ?? 0n) + 1n, memberCount: (before?.memberCount ?? 0n) + 100_000n });
        continue;
      }
      exceeded++;
      expect(code).toBe(status.DEADLINE_EXCEEDED);
      expect(after).toMatchObject({ version: before?.version, memberCount: before?.memberCount });
      // The users the call would have created do not exist either.
      expect((await segment(everyone))?.memberCount).toBe(users);
    }
    expect(exceeded, "some deadline should have passed mid-write").toBeGreaterThan(0);
  }, 300_000);

  it("writes that give up while queued behind another never run", async () => {
    const id = await staticSegment("Queued");
    const before = await segment(id);
    const doneAdds = finishedCalls(t.service, ADD);
    // Another write holds the segment's lock until released (new users are too quick to hold it for long).
    let release: () => void = () => undefined;
    const held = t.service.app.locks.run(id, () => new Promise<void>((resolve) => (release = resolve)));
    const big = t.service.segments.addMembers({ segmentId: id, userIds: ids("big_", 0, 100_000) });
    const soon = () => new Date(Date.now() + 100);
    const queued = await outcome(t.service.segments.addMembers({ segmentId: id, userIds: ["queued"] }, { deadline: soon() }));
    const created = await outcome(
      t.service.segments.createSegment({ name: "Created while busy", type: SegmentType.STATIC }, { deadline: soon() }),
    );
    release();
    await held;
    await big;
    await untilFinished(t.service, ADD, doneAdds + 2);
    expect(queued).toBe(status.DEADLINE_EXCEEDED);
    expect(await segment(id)).toMatchObject({ version: (before?.version ?? 0n) + 1n, memberCount: 100_000n });
    const names = (await t.service.segments.listSegments({ pageSize: 1_000 })).segments.map((s) => s.name);
    expect(names.includes("Created while busy")).toBe(created === "OK");
  });
});

describe.each(STORES)("a write that creates users commits early enough to enter them before its deadline, on $name", (kind) => {
  // 50 ms per new user: 1,000 new users must commit 50 s before the deadline; a 20 s deadline cannot hold them.
  const t = useService(kind, { COMMIT_RESERVE_US_PER_NEW_USER: "50000" });

  it("refuses to commit new users inside the reserve, and commits known ones under the same deadline", async () => {
    const create = async (name: string, type = SegmentType.STATIC) =>
      (await t.service.segments.createSegment({ name, type })).segment?.id ?? "";
    const [first, second, everyone] = [
      await create("Reserve first"),
      await create("Reserve second"),
      await create("Reserve all", SegmentType.EVERYONE),
    ];
    const count = async (id: string) => (await t.service.segments.getSegment({ segmentId: id })).segment?.memberCount;
    const deadline = () => new Date(Date.now() + 20_000);
    // Without a deadline nothing is reserved: the users are created.
    await t.service.segments.addMembers({ segmentId: first, userIds: ids("known_", 0, 1_000) });
    expect(await count(everyone)).toBe(1_000n);

    const known = await outcome(
      t.service.segments.addMembers({ segmentId: second, userIds: ids("known_", 0, 1_000) }, { deadline: deadline() }),
    );
    expect(known).toBe("OK");
    expect(await count(second)).toBe(1_000n);

    const done = finishedCalls(t.service, ADD);
    const fresh = await outcome(
      t.service.segments.addMembers({ segmentId: second, userIds: ids("new_", 0, 1_000) }, { deadline: deadline() }),
    );
    await untilFinished(t.service, ADD, done + 1);
    expect(fresh).toBe(status.DEADLINE_EXCEEDED);
    expect(await count(second)).toBe(1_000n);
    expect(await count(everyone)).toBe(1_000n);
  });
});

describe("a hung Postgres", () => {
  const postgres = STORES.find((s) => s.name === "postgres");
  let store: TestStore;
  let proxy: TcpProxy;
  let service: TestService;
  let direct: pg.Client;

  beforeAll(async () => {
    if (postgres === undefined) throw new Error("no postgres store");
    store = await postgres.create();
    const url = new URL(store.env.DATABASE_URL ?? "");
    proxy = await startProxy(url.hostname, Number(url.port || 5432));
    direct = new pg.Client({ connectionString: url.toString() });
    await direct.connect();
    url.host = `127.0.0.1:${proxy.port}`;
    service = await startService(
      { env: { DATABASE_URL: url.toString() }, drop: async () => undefined },
      { DB_STATEMENT_TIMEOUT_MS: "1000", DB_LOCK_TIMEOUT_MS: "1000" },
    );
  });
  afterAll(async () => {
    proxy.thaw();
    await service.stop();
    await proxy.close();
    await direct.end();
    await store.drop();
  });

  it("fails writes with UNAVAILABLE and RetryInfo, and applies none of them after it resumes", async () => {
    const segments: string[] = [];
    for (let k = 0; k < 12; k++) {
      segments.push((await service.segments.createSegment({ name: `Hung ${k}`, type: SegmentType.STATIC })).segment?.id ?? "");
    }
    proxy.freeze();
    // Twelve writes on ten pooled connections: ten hang in a statement, two wait for a connection.
    const calls = segments.map((segmentId, k) => failure(service.segments.addMembers({ segmentId, userIds: [`hung${k}`] })));
    const errors = await Promise.all(calls);
    expect(errors.map((e) => e.code)).toEqual(segments.map(() => status.UNAVAILABLE));
    expect(detail(errors[0] as (typeof errors)[number], RetryInfoSchema)?.retryDelay).toBeDefined();
    proxy.thaw();
    // The service recovers on its own: a retry succeeds on a fresh connection.
    const retried = await service.segments.addMembers({ segmentId: segments[0] ?? "", userIds: ["after"] });
    expect(retried).toMatchObject({ added: 1n, version: 1n });
    // Whatever the frozen backends held was rolled back when their connections were dropped.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const { rows } = await direct.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM membership_changes WHERE segment_id = ANY($1::uuid[])",
      [segments],
    );
    expect(rows[0]?.n).toBe(1);
    for (const segmentId of segments.slice(1)) {
      expect((await service.segments.getSegment({ segmentId })).segment).toMatchObject({ version: 0n, memberCount: 0n });
    }
  });
});
