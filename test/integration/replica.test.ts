/**
 * The client-side replica (issue 10): fed 10,000 random membership changes, it agrees with the
 * server on every (user, segment) pair at every version it reports — users it had cached as
 * never seen included — and it survives a server restart by reconnecting from the versions it
 * holds. On both stores.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rng } from "../../bench/lib/dataset.js";
import { createClient } from "../../src/client/client.js";
import { SegmentReplica } from "../../src/client/replica.js";
import { MembershipService } from "../../src/gen/segments/v1/membership_service_pb.js";
import { SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { startService, type TestService } from "../support/service.js";
import { STORES, type TestStore } from "../support/stores.js";

const USERS = 300;
const user = (n: number) => `replica_user_${n}`;
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !condition(); waited += 5) {
    if (waited > 20_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe.each(STORES)("replica on $name", (kind) => {
  let store: TestStore;
  let service: TestService;
  let port = 0;
  let replica: SegmentReplica;
  let client: ReturnType<typeof createClient<typeof MembershipService>>;
  const segments: string[] = [];
  let everyone = "";
  const model = new Map<string, Set<string>>();

  beforeAll(async () => {
    store = await kind.create();
    service = await startService(store);
    port = service.app.grpcPort;
    for (const name of ["r-a", "r-b", "r-c"]) {
      const id = (await service.segments.createSegment({ name, type: SegmentType.STATIC })).segment?.id ?? "";
      await service.segments.activateSegment({ segmentId: id });
      segments.push(id);
      model.set(id, new Set());
    }
    everyone = (await service.segments.createSegment({ name: "r-everyone", type: SegmentType.EVERYONE })).segment?.id ?? "";
    await service.segments.activateSegment({ segmentId: everyone });
    client = createClient(MembershipService, `127.0.0.1:${port}`);
    replica = await SegmentReplica.open(client, [...segments, everyone]);
  });
  afterAll(async () => {
    replica.close();
    client.close();
    await service.stop();
    await store.drop();
  });

  /** Every (user, segment) pair, users never seen included, against the model at the versions held. */
  const agree = async () => {
    const everybody = Array.from({ length: USERS + 20 }, (_, n) => user(n));
    await replica.prepare(everybody);
    for (const segmentId of segments) {
      const members = model.get(segmentId) ?? new Set();
      for (const u of everybody) expect(replica.has(u, segmentId)?.member, `${u} in ${segmentId}`).toBe(members.has(u));
    }
    expect(replica.has(user(USERS + 19), everyone)?.member).toBe(true);
  };

  it("agrees with the server at every version through 10,000 random changes", async () => {
    expect(replica.status().state).toBe("live");
    await agree();
    // The bench's seeded PRNG, so a failure replays.
    const random = rng(873);
    let changes = 0;
    for (let step = 0; changes < 10_000; step++) {
      const segmentId = segments[Math.floor(random() * segments.length)] as string;
      const members = model.get(segmentId) as Set<string>;
      // Users up to USERS + 20: the last 20 are never seen until a change first names them.
      const ids = [...new Set(Array.from({ length: 25 }, () => user(Math.floor(random() * (step < 200 ? USERS : USERS + 20)))))];
      const adding = random() < 0.6;
      const answer = adding
        ? await service.segments.addMembers({ segmentId, userIds: ids })
        : await service.segments.removeMembers({ segmentId, userIds: ids });
      for (const u of ids) adding ? members.add(u) : members.delete(u);
      changes += ids.length;
      const version = Number(answer.version);
      await until(() => (replica.status().versions[segmentId] ?? 0) >= version, `version ${version} of ${segmentId}`);
      expect(replica.status().versions[segmentId]).toBe(version);
      await agree();
    }
    // The model itself matches the server.
    for (const segmentId of segments) {
      const all = Array.from({ length: USERS + 20 }, (_, n) => user(n));
      const answer = await client.batchCheckMembership({ segmentId, userIds: all });
      expect(all.filter((_, i) => answer.members[i])).toEqual(all.filter((u) => model.get(segmentId)?.has(u)));
    }
  }, 600_000);

  it("rides out a server restart: lagging while it is down, then caught up from the versions it holds", async () => {
    await service.stop();
    await until(() => replica.status().state === "lagging", "the replica to notice");
    service = await startService(store, { GRPC_PORT: String(port) });
    const segmentId = segments[0] as string;
    // grpc-js pools connections per address across clients: the new service's client may share
    // the replica's, still backing off from the outage, and fail fast. AddMembers is idempotent.
    const add = () => service.segments.addMembers({ segmentId, userIds: [user(USERS + 50)] });
    let answer = await add().catch(() => undefined);
    for (let tries = 0; answer === undefined; tries++) {
      if (tries > 200) throw new Error("the restarted service never answered");
      await new Promise((resolve) => setTimeout(resolve, 100));
      answer = await add().catch(() => undefined);
    }
    model.get(segmentId)?.add(user(USERS + 50));
    await until(() => replica.status().versions[segmentId] === Number(answer.version), "the change after the restart");
    expect(replica.status().state).toBe("live");
    expect((await replica.check(user(USERS + 50), segmentId)).member).toBe(true);
    await agree();
  }, 120_000);
});
