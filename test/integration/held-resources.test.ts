/**
 * No client may hold the service (issue 8, B and C8): idle or endless import streams are closed
 * without holding other writes up, an import in progress does not stall other segments, and
 * oversized or malformed requests are refused before they cost a decode — on both stores.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Writable } from "node:stream";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { type ImportMembersRequestSchema, ImportMode } from "../../src/gen/segments/v1/segment_service_pb.js";
import { finishedCalls } from "../support/calls.js";
import { field, rawCall } from "../support/raw-call.js";
import { startService, useService } from "../support/service.js";
import { failure } from "../support/status.js";
import { STORES } from "../support/stores.js";

type ImportMessage = MessageInitShape<typeof ImportMembersRequestSchema>;
const ids = (prefix: string, from: number, to: number) => Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const never = new Promise<never>(() => undefined);
const SEGMENTS = "/segments.v1.SegmentService";

describe.each(STORES)("held resources on $name", (kind) => {
  const t = useService(kind, { STREAM_IDLE_MS: "1500", STREAM_MAX_MS: "4000" });
  const staticSegment = async (name: string) =>
    (await t.service.segments.createSegment({ name, type: SegmentType.STATIC })).segment?.id ?? "";
  const segment = async (id: string) => (await t.service.segments.getSegment({ segmentId: id })).segment;
  const soon = () => ({ deadline: new Date(Date.now() + 10_000) });

  it("ten idle imports hold no connection or lock, and are closed with RESOURCE_EXHAUSTED, applying nothing", async () => {
    const everyone = (await t.service.segments.createSegment({ name: "Idle users", type: SegmentType.EVERYONE })).segment?.id ?? "";
    const usersBefore = (await segment(everyone))?.memberCount ?? 0n;
    const idle: string[] = [];
    for (let k = 0; k < 10; k++) idle.push(await staticSegment(`Idle ${k}`));
    const streams = idle.map((segmentId, k) => {
      async function* messages(): AsyncGenerator<ImportMessage> {
        yield { segmentId, mode: ImportMode.ADD, userIds: ids(`idle${k}_`, 0, 500) };
        await never;
      }
      return failure(t.service.segments.importMembers(messages()));
    });
    await sleep(300); // Let every stream's first message arrive and be staged.
    // Writes, history and diffs — on other segments and on an importing one — all go through.
    const other = await staticSegment("Busy other");
    expect(await t.service.segments.addMembers({ segmentId: other, userIds: ["x"] }, soon())).toMatchObject({ version: 1n });
    const own = idle[0] ?? "";
    expect(await t.service.segments.addMembers({ segmentId: own, userIds: ["direct"] }, soon())).toMatchObject({ version: 1n });
    expect((await t.service.segments.listSegmentHistory({ segmentId: own }, soon())).entries.length).toBe(1);
    expect(await t.service.segments.diffMembership({ segmentId: other, fromVersion: 0n, toVersion: 1n }, soon())).toMatchObject({
      enteredCount: 1n,
    });
    for (const error of await Promise.all(streams)) {
      expect(error.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(error.details).toContain("STREAM_IDLE_MS");
    }
    for (const [k, id] of idle.entries()) expect((await segment(id))?.memberCount).toBe(k === 0 ? 1n : 0n);
    // Nobody the idle imports named became a user.
    expect((await segment(everyone))?.memberCount).toBe(usersBefore + 2n);
  });

  it("closes a stream open longer than STREAM_MAX_MS with DEADLINE_EXCEEDED, applying nothing", async () => {
    const id = await staticSegment("Endless");
    async function* trickle(): AsyncGenerator<ImportMessage> {
      for (let n = 0; n < 20; n++) {
        yield { ...(n === 0 ? { segmentId: id, mode: ImportMode.ADD } : {}), userIds: [`trickle${n}`] };
        await sleep(400);
      }
    }
    const error = await failure(t.service.segments.importMembers(trickle()));
    expect(error.code).toBe(status.DEADLINE_EXCEEDED);
    expect(error.details).toContain("STREAM_MAX_MS");
    expect(await segment(id)).toMatchObject({ version: 0n, memberCount: 0n });
  });

  it("lets writes to other segments commit while an import streams", async () => {
    const importing = await staticSegment("Streaming import");
    const other = await staticSegment("Written meanwhile");
    const events: string[] = [];
    let streamed = 0;
    let writesDone: () => void = () => undefined;
    const resume = new Promise<void>((resolve) => (writesDone = resolve));
    async function* messages(): AsyncGenerator<ImportMessage> {
      for (let n = 0; n < 10; n++) {
        yield { ...(n === 0 ? { segmentId: importing, mode: ImportMode.ADD } : {}), userIds: ids(`stream${n}_`, 0, 10_000) };
        streamed++;
        // Mid-stream, the import holds nothing: the writes below must commit before it goes on.
        if (n === 1) await resume;
      }
    }
    const imported = t.service.segments.importMembers(messages()).then((result) => {
      events.push("import committed");
      return result;
    });
    while (streamed < 2) await sleep(10);
    for (let n = 0; n < 5; n++) {
      await t.service.segments.addMembers({ segmentId: other, userIds: [`meanwhile${n}`] });
      events.push(`write ${n}`);
    }
    writesDone();
    expect((await imported).memberCount).toBe(100_000n);
    expect(events).toEqual(["write 0", "write 1", "write 2", "write 3", "write 4", "import committed"]);
  });

  it("refuses 9.8M ids in one message, and 6.4M lines in one text chunk, before decoding them", async () => {
    const id = await staticSegment("Oversized");
    const tiny = Buffer.alloc(3 * 9_800_000).fill(Buffer.from([0x12, 0x01, 0x61])); // user_ids: "a", repeated
    const add = Buffer.concat([field(1, Buffer.from(id)), tiny]);
    const text = Buffer.alloc(2 * 6_400_000).fill("a\n");
    const importMessage = Buffer.concat([field(1, Buffer.from(id)), Buffer.from([0x10, 0x01]), field(4, text)]);
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const added = await rawCall(t.service.address, `${SEGMENTS}/AddMembers`, [add], false);
    const importedText = await rawCall(t.service.address, `${SEGMENTS}/ImportMembers`, [importMessage], true);
    loop.disable();
    expect(added.code).toBe(status.INVALID_ARGUMENT);
    expect(added.details).toContain("limit of 100000");
    expect(importedText.code).toBe(status.INVALID_ARGUMENT);
    expect(loop.max / 1e6, "longest event-loop stall (ms)").toBeLessThan(200);
    expect(await segment(id)).toMatchObject({ version: 0n, memberCount: 0n });
  });

  it("answers malformed protobuf with INVALID_ARGUMENT, counted like any call, applying nothing", async () => {
    const id = await staticSegment("Malformed");
    const before = finishedCalls(t.service, "segments.v1.SegmentService/AddMembers");
    const valid = Buffer.concat([field(1, Buffer.from(id)), field(2, Buffer.from("ok"))]);
    const bad = [
      Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), // a varint over 64 bits
      valid.subarray(0, valid.byteLength - 1), // truncated
      Buffer.concat([field(1, Buffer.from(id)), field(2, Buffer.from([0xc3, 0x28]))]), // invalid UTF-8 id
      Buffer.from([0x0f]), // wire type 7 does not exist
    ];
    for (const message of bad) {
      const answer = await rawCall(t.service.address, `${SEGMENTS}/AddMembers`, [message], false);
      expect(answer.code).toBe(status.INVALID_ARGUMENT);
      expect(answer.details).toContain("segments.v1.AddMembersRequest");
    }
    const streamed = await rawCall(
      t.service.address,
      `${SEGMENTS}/ImportMembers`,
      [Buffer.concat([field(1, Buffer.from(id)), Buffer.from([0x10, 0x01]), field(3, Buffer.from("fine"))]), bad[0] as Buffer],
      true,
    );
    expect(streamed.code).toBe(status.INVALID_ARGUMENT);
    expect(finishedCalls(t.service, "segments.v1.SegmentService/AddMembers")).toBe(before + bad.length);
    expect(await segment(id)).toMatchObject({ version: 0n, memberCount: 0n });
  });
});

describe("shutdown during an import", () => {
  it("cancels the import without an error-level log or an INTERNAL", async () => {
    const kind = STORES[0];
    if (kind === undefined) throw new Error("no store");
    const store = await kind.create();
    const lines: { level: number; msg: string }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString("utf8")) as { level: number; msg: string });
        done();
      },
    });
    const service = await startService(store, { SHUTDOWN_GRACE_MS: "200" }, pino({ level: "debug" }, sink));
    try {
      const id = (await service.segments.createSegment({ name: "Cut short", type: SegmentType.STATIC })).segment?.id ?? "";
      async function* messages(): AsyncGenerator<ImportMessage> {
        yield { segmentId: id, mode: ImportMode.ADD, userIds: ["cut"] };
        await never;
      }
      const call = failure(service.segments.importMembers(messages()));
      await sleep(200);
      await service.stop();
      expect([status.CANCELLED, status.UNAVAILABLE]).toContain((await call).code);
      const finished = lines.find((line) => line.msg === "call finished" && JSON.stringify(line).includes("ImportMembers"));
      expect(finished, "the cancelled import is logged at debug").toBeDefined();
      expect(lines.filter((line) => line.level >= 50)).toEqual([]);
    } finally {
      await store.drop();
    }
  });
});
