/**
 * Access control end to end (issue 12): every method of every service called with no token, a
 * bad token and each role gives the code the role table says; refused calls change nothing; the
 * store holds token hashes only; revocation reaches another replica; the audit trail names the
 * token; with no token the service stays on loopback.
 */
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { create, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { status as code, Metadata, type ServiceError } from "@grpc/grpc-js";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { METHOD_ROLES, ROLES } from "../../src/auth/roles.js";
import { type Client, createClient } from "../../src/client/client.js";
import { AccessService, Role } from "../../src/gen/segments/v1/access_service_pb.js";
import { MembershipService } from "../../src/gen/segments/v1/membership_service_pb.js";
import { SegmentStatus, SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { SegmentService } from "../../src/gen/segments/v1/segment_service_pb.js";
import type { Role as RoleName } from "../../src/model.js";
import { startService, type TestService } from "../support/service.js";
import { failure } from "../support/status.js";
import { STORES, storeKind, type TestStore } from "../support/stores.js";

const SERVICES: DescService[] = [SegmentService, MembershipService, AccessService];
const ADMIN_TOKEN = randomBytes(32).toString("hex");

/** `authorization` metadata for `token`. */
function bearer(token: string): Metadata {
  const metadata = new Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  return metadata;
}

/** The status code a call of `method` with `request` ends with (OK when it succeeds). */
async function codeOf(address: string, method: DescMethod, request: object, metadata: Metadata): Promise<code> {
  const client = createClient(method.parent, address) as unknown as Record<string, (...args: unknown[]) => unknown> & { close(): void };
  const call = client[method.localName];
  if (call === undefined) throw new Error(`no client method ${method.localName}`);
  try {
    const init = create(method.input, request as never);
    if (method.methodKind === "server_streaming") {
      for await (const _ of call(init, { metadata }) as AsyncIterable<unknown>) break;
    } else if (method.methodKind === "client_streaming") {
      await call([init], { metadata });
    } else {
      await call(init, { metadata });
    }
    return code.OK;
  } catch (error: unknown) {
    return (error as ServiceError).code;
  } finally {
    client.close();
  }
}

/** A request for `method` aimed at real data: what the method would change if it were let through. */
function requestFor(method: DescMethod, segmentId: string, revokable: string): object {
  const byName: Record<string, object> = {
    CreateSegment: { name: "Refused", type: SegmentType.STATIC },
    AddMembers: { segmentId, userIds: ["intruder"] },
    RemoveMembers: { segmentId, userIds: ["u1"] },
    ImportMembers: { segmentId, userIds: ["intruder"] },
    SubtractSegment: { segmentId, subtrahendSegmentId: segmentId },
    RollbackSegment: { segmentId, version: 1n },
    UpdateSegment: { segmentId, segment: { name: "Renamed" }, updateMask: { paths: ["name"] } },
    CreateApiToken: { name: "sneaky", role: Role.ADMIN },
    RevokeApiToken: { id: revokable },
    CheckMembership: { userId: "u1", segmentIds: [segmentId] },
  };
  const named = byName[method.name];
  if (named !== undefined) return named;
  return method.input.fields.some((f) => f.localName === "segmentId") ? { segmentId } : {};
}

/** What a caller can see of the service's state: it must not move when calls are refused. */
async function fingerprint(address: string, admin: Metadata): Promise<string> {
  const segments = createClient(SegmentService, address);
  const access = createClient(AccessService, address);
  try {
    const listed = await segments.listSegments({ pageSize: 1000, showArchived: true }, { metadata: admin });
    const rows = [];
    for (const s of listed.segments) {
      const history = await segments.listSegmentHistory({ segmentId: s.id, pageSize: 1000 }, { metadata: admin });
      rows.push([s.id, s.name, s.status, s.version, s.memberCount, history.entries.length]);
    }
    const tokens = await access.listApiTokens({ includeRevoked: true }, { metadata: admin });
    return JSON.stringify([rows, tokens.tokens.map((t) => [t.id, t.role, t.revokeTime?.seconds ?? null])], (_k, v) =>
      typeof v === "bigint" ? v.toString() : v,
    );
  } finally {
    segments.close();
    access.close();
  }
}

describe("the role matrix (postgres)", () => {
  let store: TestStore;
  let service: TestService;
  let access: Client<typeof AccessService>;
  const tokens = {} as Record<RoleName, string>;
  let segmentId = "";
  let revokable = "";
  const admin = bearer(ADMIN_TOKEN);

  beforeAll(async () => {
    store = await storeKind("postgres").create();
    service = await startService(store, { ADMIN_TOKEN });
    access = createClient(AccessService, service.address);
    for (const role of ROLES) {
      const made = await access.createApiToken({ name: `${role} token`, role: roleMessage(role) }, { metadata: admin });
      tokens[role] = made.bearerToken;
    }
    revokable = (await access.createApiToken({ name: "spare", role: Role.READER }, { metadata: admin })).token?.id ?? "";
    const { segment } = await service.segments.createSegment({ name: "Target", type: SegmentType.STATIC }, { metadata: admin });
    segmentId = segment?.id ?? "";
    await service.segments.addMembers({ segmentId, userIds: ["u1", "u2"] }, { metadata: admin });
    await service.segments.activateSegment({ segmentId }, { metadata: admin });
  });
  afterAll(async () => {
    access.close();
    await service.stop();
    await store.drop();
  });

  it("names a role for every method of every service, and the README prints the same table", async () => {
    const methods = SERVICES.flatMap((s) => s.methods.map((m) => `${s.typeName}/${m.name}`));
    expect(Object.keys(METHOD_ROLES).sort()).toEqual(methods.sort());
    const readme = await readFile("README.md", "utf8");
    const block = /<!-- roles:start -->\n([\s\S]*?)<!-- roles:end -->/.exec(readme)?.[1] ?? "";
    const printed = [...block.matchAll(/^\| `(\w+)` \| `(\w+)` \| (\w+) \|$/gm)].map((m) => [`segments.v1.${m[1]}/${m[2]}`, m[3]]);
    expect(Object.fromEntries(printed)).toEqual(METHOD_ROLES);
  });

  it("refuses every method without a token, with a bad token and below its role, and the refusals change nothing", async () => {
    const before = await fingerprint(service.address, admin);
    const unknownToken = `sgt_${"a".repeat(12)}_${"b".repeat(43)}`;
    const callers: [string, Metadata, (needed: RoleName) => code | undefined][] = [
      ["no token", new Metadata(), () => code.UNAUTHENTICATED],
      ["a malformed token", bearer("not-a-token"), () => code.UNAUTHENTICATED],
      ["an unknown token", bearer(unknownToken), () => code.UNAUTHENTICATED],
      // The last character changed for sure: a token that already ended in "0" (1 run in 16) was once "wrong" and right.
      ["a wrong ADMIN_TOKEN", bearer(`${ADMIN_TOKEN.slice(0, -1)}${ADMIN_TOKEN.endsWith("0") ? "1" : "0"}`), () => code.UNAUTHENTICATED],
      [
        "not a bearer",
        (() => {
          const m = new Metadata();
          m.set("authorization", `Basic ${tokens.admin}`);
          return m;
        })(),
        () => code.UNAUTHENTICATED,
      ],
      ...ROLES.map((role): [string, Metadata, (needed: RoleName) => code | undefined] => [
        role,
        bearer(tokens[role]),
        (needed) => (ROLES.indexOf(role) < ROLES.indexOf(needed) ? code.PERMISSION_DENIED : undefined),
      ]),
    ];
    const wrong: string[] = [];
    for (const service_ of SERVICES) {
      for (const method of service_.methods) {
        const needed = METHOD_ROLES[`${service_.typeName}/${method.name}`] ?? "admin";
        for (const [who, metadata, expected] of callers) {
          const want = expected(needed);
          if (want === undefined) continue;
          const got = await codeOf(service.address, method, requestFor(method, segmentId, revokable), metadata);
          if (got !== want) wrong.push(`${method.name} with ${who}: ${code[got]}, expected ${code[want]}`);
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(await fingerprint(service.address, admin)).toBe(before);
  });

  it("lets every role at or above a method's role through to the method", async () => {
    const wrong: string[] = [];
    for (const service_ of SERVICES) {
      for (const method of service_.methods) {
        const needed = METHOD_ROLES[`${service_.typeName}/${method.name}`] ?? "admin";
        for (const role of ROLES.filter((r) => ROLES.indexOf(r) >= ROLES.indexOf(needed))) {
          // Empty requests: the method runs and judges the request itself (often INVALID_ARGUMENT).
          const got = await codeOf(service.address, method, {}, bearer(tokens[role]));
          if (got === code.UNAUTHENTICATED || got === code.PERMISSION_DENIED) wrong.push(`${method.name} as ${role}: ${code[got]}`);
        }
        const got = await codeOf(service.address, method, {}, admin);
        if (got === code.UNAUTHENTICATED || got === code.PERMISSION_DENIED) wrong.push(`${method.name} as ADMIN_TOKEN: ${code[got]}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it("names the role a refused method needs and the token's own", async () => {
    const error = await failure(service.segments.deleteSegment({ segmentId }, { metadata: bearer(tokens.writer) }));
    expect(error.code).toBe(code.PERMISSION_DENIED);
    expect(error.details).toMatch(/DeleteSegment needs the admin role; token [a-z2-7]{12} \("writer token"\) has writer/);
  });

  it("keeps health and reflection open", async () => {
    const health = await service.health.check({ service: "" });
    expect(health.status).toBeGreaterThan(0);
  });

  it("records the token in the audit trail and x-caller only as who it acted for", async () => {
    const metadata = bearer(tokens.writer);
    metadata.set("x-caller", "alice@example.com");
    const { segment } = await service.segments.createSegment({ name: "Audited", type: SegmentType.STATIC }, { metadata });
    const who = await access.whoAmI({}, { metadata: bearer(tokens.writer) });
    const history = await service.segments.listSegmentHistory({ segmentId: segment?.id ?? "" }, { metadata: admin });
    expect(history.entries[0]).toMatchObject({ caller: `writer token (token ${who.tokenId})`, onBehalfOf: "alice@example.com" });
    await service.segments.activateSegment({ segmentId: segment?.id ?? "" }, { metadata: admin });
    const again = await service.segments.listSegmentHistory({ segmentId: segment?.id ?? "" }, { metadata: admin });
    expect(again.entries[0]).toMatchObject({ caller: "ADMIN_TOKEN", onBehalfOf: "", toStatus: SegmentStatus.ACTIVE });
  });
});

describe.each(STORES)("API tokens on $name", (kind) => {
  let store: TestStore;
  let service: TestService;
  let access: Client<typeof AccessService>;
  const admin = bearer(ADMIN_TOKEN);

  beforeAll(async () => {
    store = await kind.create();
    service = await startService(store, { ADMIN_TOKEN });
    access = createClient(AccessService, service.address);
  });
  afterAll(async () => {
    access.close();
    await service.stop();
    await store.drop();
  });

  it("shows a token once, lists it without its secret, and refuses it right after it is revoked", async () => {
    const made = await access.createApiToken({ name: "campaign sender", role: Role.READER }, { metadata: admin });
    const id = made.token?.id ?? "";
    expect(made.bearerToken).toMatch(new RegExp(`^sgt_${id}_[A-Za-z0-9_-]{43}$`));
    expect(made.token).toMatchObject({ name: "campaign sender", role: Role.READER, createdBy: "ADMIN_TOKEN", revokedBy: "" });
    const mine = bearer(made.bearerToken);
    expect(await access.whoAmI({}, { metadata: mine })).toMatchObject({ authenticated: true, tokenId: id, role: Role.READER });
    const listed = await access.listApiTokens({}, { metadata: admin });
    expect(JSON.stringify(listed, (_k, v) => (typeof v === "bigint" ? v.toString() : v))).not.toContain(made.bearerToken.slice(17));
    expect(listed.tokens.map((t) => t.id)).toContain(id);
    const revoked = await access.revokeApiToken({ id }, { metadata: admin });
    expect(revoked.token?.revokeTime).toBeDefined();
    expect(revoked.token?.revokedBy).toBe("ADMIN_TOKEN");
    expect((await failure(access.whoAmI({}, { metadata: mine }))).code).toBe(code.UNAUTHENTICATED);
    expect((await access.listApiTokens({}, { metadata: admin })).tokens.map((t) => t.id)).not.toContain(id);
    expect((await access.listApiTokens({ includeRevoked: true }, { metadata: admin })).tokens.map((t) => t.id)).toContain(id);
    // Idempotent, and precise about bad ids.
    expect((await access.revokeApiToken({ id }, { metadata: admin })).token?.revokeTime).toEqual(revoked.token?.revokeTime);
    expect((await failure(access.revokeApiToken({ id: "zzzzzzzzzzzz" }, { metadata: admin }))).code).toBe(code.NOT_FOUND);
    expect((await failure(access.revokeApiToken({ id: "nope" }, { metadata: admin }))).code).toBe(code.INVALID_ARGUMENT);
    expect((await failure(access.createApiToken({ name: " ", role: Role.READER }, { metadata: admin }))).code).toBe(code.INVALID_ARGUMENT);
    expect((await failure(access.createApiToken({ name: "x", role: Role.UNSPECIFIED }, { metadata: admin }))).code).toBe(
      code.INVALID_ARGUMENT,
    );
  });

  it("keeps only a hash of each secret in the store, and tokens survive a restart", async () => {
    const made = await access.createApiToken({ name: "stored", role: Role.WRITER }, { metadata: admin });
    const secret = made.bearerToken.slice(`sgt_${made.token?.id}_`.length);
    // Restart without ADMIN_TOKEN: the stored token alone keeps authentication on.
    await service.stop();
    access.close();
    const rows = await tokenRows(store);
    expect(rows.length).toBeGreaterThan(0);
    const dump = JSON.stringify(rows);
    expect(dump).not.toContain(secret);
    expect(dump).not.toContain(Buffer.from(secret).toString("hex"));
    expect(rows.find((r) => r.id === made.token?.id)?.secret_sha256).toHaveLength(32);
    service = await startService(store);
    access = createClient(AccessService, service.address);
    expect((await failure(access.whoAmI({}))).code).toBe(code.UNAUTHENTICATED);
    expect(await access.whoAmI({}, { metadata: bearer(made.bearerToken) })).toMatchObject({ tokenId: made.token?.id, role: Role.WRITER });
  });
});

/** Every row of api_tokens, read straight from the database (the service must be stopped on PGlite). */
async function tokenRows(store: TestStore): Promise<{ id: string; secret_sha256: Uint8Array }[]> {
  const sql = "SELECT * FROM api_tokens";
  if (store.env.DATABASE_URL !== undefined) {
    const client = new pg.Client({ connectionString: store.env.DATABASE_URL });
    await client.connect();
    try {
      return (await client.query(sql)).rows;
    } finally {
      await client.end();
    }
  }
  const { PgliteDatabase } = await import("../../src/store/pglite-database.js");
  const db = await PgliteDatabase.open(store.env.DATA_DIR ?? "", 10_000);
  try {
    return await db.query(sql);
  } finally {
    await db.close();
  }
}

describe("without any token (postgres)", () => {
  let store: TestStore;
  beforeAll(async () => {
    store = await storeKind("postgres").create();
  });
  afterAll(() => store.drop());

  it("refuses to serve a non-loopback address, unless told to", async () => {
    await expect(startService(store, { GRPC_HOST: "0.0.0.0" })).rejects.toThrow(/not a loopback address and no API token/);
    const open = await startService(store, { GRPC_HOST: "0.0.0.0", ALLOW_UNAUTHENTICATED: "true" });
    await open.stop();
  });

  it("lets loopback callers act as admin until the first token exists, then requires tokens for good", async () => {
    const service = await startService(store);
    const access = createClient(AccessService, service.address);
    try {
      expect(await access.whoAmI({})).toMatchObject({ authenticated: false, name: "unauthenticated", role: Role.ADMIN });
      const made = await access.createApiToken({ name: "first", role: Role.ADMIN });
      expect((await failure(access.whoAmI({}))).code).toBe(code.UNAUTHENTICATED);
      await access.revokeApiToken({ id: made.token?.id ?? "" }, { metadata: bearer(made.bearerToken) });
      // Revoking the last token does not open the service again.
      expect((await failure(access.whoAmI({}))).code).toBe(code.UNAUTHENTICATED);
    } finally {
      access.close();
      await service.stop();
    }
  });
});

describe("revocation across replicas (postgres)", () => {
  let store: TestStore;
  beforeAll(async () => {
    store = await storeKind("postgres").create();
  });
  afterAll(() => store.drop());

  it("refuses a token revoked on one replica on the other within TOKEN_REFRESH_MS", async () => {
    const env = { ADMIN_TOKEN, TOKEN_REFRESH_MS: "200" };
    const one = await startService(store, env);
    const two = await startService(store, env);
    const onOne = createClient(AccessService, one.address);
    const onTwo = createClient(AccessService, two.address);
    try {
      const made = await onOne.createApiToken({ name: "shared", role: Role.READER }, { metadata: bearer(ADMIN_TOKEN) });
      const mine = bearer(made.bearerToken);
      // Created on one, known to two after a refresh.
      await until(async () => (await codeOf(two.address, AccessService.method.whoAmI, {}, mine)) === code.OK);
      await onOne.revokeApiToken({ id: made.token?.id ?? "" }, { metadata: bearer(ADMIN_TOKEN) });
      // The other replica re-reads tokens every 200 ms; `until` gives up after 10 s.
      await until(async () => (await codeOf(two.address, AccessService.method.whoAmI, {}, mine)) === code.UNAUTHENTICATED);
      expect((await failure(onTwo.whoAmI({}, { metadata: mine }))).code).toBe(code.UNAUTHENTICATED);
    } finally {
      onOne.close();
      onTwo.close();
      await one.stop();
      await two.stop();
    }
  });
});

async function until(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function roleMessage(role: RoleName): Role {
  return role === "reader" ? Role.READER : role === "writer" ? Role.WRITER : Role.ADMIN;
}
