/**
 * Seeds many segments straight into a stopped service's store, through the service's own store
 * module (same rows, same Roaring deltas as AddMembers would write). Loading 50M members over RPC
 * would take longer than a whole run; restart only needs them to be there.
 */
import pino from "pino";
import { openDatabase } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { encodeBitmap } from "../../src/index/membership.js";
import { RoaringBitmap32 } from "../../src/index/roaring.js";
import { newSegment } from "../../src/service/segment-service.js";
import { SegmentStore } from "../../src/store/segment-store.js";
import { rng } from "./dataset.js";

/** Adds `count` ACTIVE STATIC segments holding `totalMembers` members drawn from existing uids. */
export async function seedSegments(env: Record<string, string>, count: number, totalMembers: number, seed: number): Promise<number> {
  const db = await openDatabase(loadConfig(env), pino({ level: "silent" }));
  try {
    const store = new SegmentStore(db);
    const [bounds] = await db.query<{ users: number; top: number }>(
      "SELECT coalesce(sum(id_count), 0)::int AS users, coalesce(max(first_uid + id_count), 0)::int - 1 AS top FROM user_chunks",
    );
    if (bounds === undefined || bounds.users === 0 || bounds.users !== bounds.top + 1) {
      throw new Error("seeding needs a directory with dense uids 0..n-1 (load the dataset first)");
    }
    const perSegment = Math.floor(totalMembers / count);
    const next = rng(seed + 7);
    let seeded = 0;
    for (let i = 0; i < count; i++) {
      const members = new RoaringBitmap32();
      // Half the segments are random samples, half runs of consecutive users: both shapes occur.
      const start = Math.floor(next() * bounds.users);
      for (let k = 0; k < perSegment; k++) {
        members.add(i % 2 === 0 ? Math.floor(next() * bounds.users) : (start + k) % bounds.users);
      }
      const now = new Date();
      const definition = {
        name: `bench seeded ${i} ${now.getTime()}`,
        description: "",
        type: "STATIC" as const,
        query: null,
        schedule: null,
      };
      const segment = { ...newSegment(definition, now), status: "ACTIVE" as const };
      await store.insertSegment(segment, {
        at: now,
        action: "CREATE",
        caller: "bench",
        onBehalfOf: "",
        fromStatus: null,
        toStatus: "ACTIVE",
        changedFields: [],
      });
      await store.transaction((tx) =>
        store.appendChange(tx, {
          segmentId: segment.id,
          version: 1,
          added: encodeBitmap(members),
          removed: encodeBitmap(new RoaringBitmap32()),
          addedCount: members.size,
          removedCount: 0,
          memberCount: members.size,
          trigger: "IMPORT",
          at: now,
        }),
      );
      seeded += members.size;
    }
    return seeded;
  } finally {
    await db.close();
  }
}
