/**
 * The client's pure decisions: when to retry and how long to wait, which addresses default to
 * plaintext, the method table the README documents, and that the package imports no server code.
 */
import { readdir, readFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { isLoopback } from "../../src/client/channel.js";
import { Code, SegmentsError } from "../../src/client/errors.js";
import { DEFAULT_DEADLINES, methodPolicy } from "../../src/client/method-policy.js";
import { DEFAULT_RETRY_POLICY, retryDelay } from "../../src/client/retry.js";
import { SegmentsClient } from "../../src/client/segments-client.js";
import { MembershipService } from "../../src/gen/segments/v1/membership_service_pb.js";
import { SegmentService } from "../../src/gen/segments/v1/segment_service_pb.js";

const unavailable = (retryDelayMs?: number) => {
  const error = new SegmentsError(Code.UNAVAILABLE, "down");
  return retryDelayMs === undefined ? error : Object.assign(error, { retryDelayMs });
};

describe("retryDelay", () => {
  const policy = DEFAULT_RETRY_POLICY; // 4 attempts, 100 ms doubling, at most 3 s
  const now = 1_000_000;

  it.each([
    // attempt, random, expected wait: full jitter under 100 · 2^(attempt−1)
    [1, 1, 100],
    [1, 0.5, 50],
    [2, 1, 200],
    [3, 1, 400],
    [3, 0, 0],
  ])("waits up to the exponential bound: attempt %i, random %d → %i ms", (attempt, random, expected) => {
    expect(retryDelay(unavailable(), attempt, policy, undefined, now, () => random)).toBe(expected);
  });

  it("caps the computed bound at maxBackoffMs", () => {
    expect(retryDelay(unavailable(), 9, { ...policy, maxAttempts: 10 }, undefined, now, () => 1)).toBe(3_000);
  });

  it("gives up once the attempts are spent", () => {
    expect(retryDelay(unavailable(), 4, policy, undefined, now, () => 1)).toBeUndefined();
    expect(retryDelay(unavailable(), 1, { ...policy, maxAttempts: 1 }, undefined, now)).toBeUndefined();
  });

  it.each([Code.OK, Code.CANCELLED, Code.UNKNOWN, Code.DEADLINE_EXCEEDED, Code.RESOURCE_EXHAUSTED, Code.ABORTED, Code.INTERNAL])(
    "retries only UNAVAILABLE, not code %i",
    (code) => {
      expect(retryDelay(new SegmentsError(code, "no"), 1, policy, undefined, now)).toBeUndefined();
    },
  );

  it("waits at least the server's RetryInfo delay, beyond maxBackoffMs, plus up to 20 %", () => {
    expect(retryDelay(unavailable(10_000), 1, policy, undefined, now, () => 0)).toBe(10_000);
    expect(retryDelay(unavailable(10_000), 1, policy, undefined, now, () => 1)).toBe(12_000);
  });

  it("does not wait for a retry that would start after the deadline", () => {
    expect(retryDelay(unavailable(1_000), 1, policy, new Date(now + 999), now, () => 0)).toBeUndefined();
    expect(retryDelay(unavailable(1_000), 1, policy, new Date(now + 1_001), now, () => 0)).toBe(1_000);
  });
});

describe("isLoopback", () => {
  it.each([
    ["127.0.0.1:50051", true],
    ["127.1.2.3:50051", true],
    ["localhost:50051", true],
    ["[::1]:50051", true],
    ["dns:///localhost:50051", true],
    ["ipv4:127.0.0.1:50051", true],
    ["unix:/tmp/segments.sock", true],
    ["10.0.0.1:50051", false],
    ["segments.internal:443", false],
    ["dns:///segments.internal:443", false],
    ["127.0.0.1.example.com:443", false],
    ["[2001:db8::1]:50051", false],
  ])("%s → %s", (address, loopback) => {
    expect(isLoopback(address)).toBe(loopback);
  });
});

describe("SegmentsClient options", () => {
  it.each([
    [{ deadlines: { membership: -1 } }, /deadlines.membership/],
    [{ deadlines: { admin: Number.NaN } }, /deadlines.admin/],
    [{ retry: { maxAttempts: 0 } }, /retry.maxAttempts/],
    [{ retry: { multiplier: 0.5 } }, /retry.multiplier/],
    [{ tls: { privateKey: "x" } }, /certChain and tls.privateKey/],
  ])("refuses %j when the client is made", (options, message) => {
    expect(() => new SegmentsClient("127.0.0.1:1", options)).toThrow(message);
  });

  it("keeps the defaults for options given as undefined", () => {
    const make = () =>
      new SegmentsClient("127.0.0.1:1", { deadlines: { membership: undefined }, retry: { maxAttempts: undefined } }).close();
    expect(make).not.toThrow();
  });

  it("rejects, without calling, a call given an invalid timeout", async () => {
    const client = new SegmentsClient("127.0.0.1:1");
    await expect(client.membership.checkMembership({ userId: "a" }, { timeoutMs: Number.NaN })).rejects.toThrow(RangeError);
    client.close();
  });
});

describe("the method table", () => {
  it("is what the README documents", async () => {
    const readme = await readFile("README.md", "utf8");
    const table = /<!-- client-methods:start -->\n([\s\S]*?)<!-- client-methods:end -->/.exec(readme)?.[1] ?? "";
    const documented = new Map<string, { kind: string; idempotent: boolean }>();
    const deadlines = new Map<string, string>();
    for (const row of table.split("\n").slice(2)) {
      const cells = row.split("|").map((cell) => cell.trim());
      const kind = cells[1]?.replaceAll("`", "");
      if (kind === undefined || kind === "") continue;
      deadlines.set(kind, cells[2] ?? "");
      for (const [column, idempotent] of [
        [3, true],
        [4, false],
      ] as const) {
        for (const name of (cells[column] ?? "").replace(/\(.*\)/, "").split(",")) {
          if (name.trim() !== "—") documented.set(name.trim(), { kind, idempotent });
        }
      }
    }
    const actual = new Map(
      [...SegmentService.methods, ...MembershipService.methods].map((method) => {
        const { kind, idempotent } = methodPolicy(method);
        return [method.name, { kind, idempotent }] as const;
      }),
    );
    expect(Object.fromEntries(documented)).toEqual(Object.fromEntries(actual));
    const shown = (ms: number | null) => (ms === null ? "none" : ms >= 60_000 ? `${ms / 60_000} min` : `${ms / 1_000} s`);
    expect(Object.fromEntries(deadlines)).toEqual(
      Object.fromEntries(Object.entries(DEFAULT_DEADLINES).map(([kind, ms]) => [kind, shown(ms)])),
    );
  });
});

describe("the client package", () => {
  it("imports only its own files, the generated code and libraries, never the server", async () => {
    const root = resolve("src");
    const seen = new Set<string>();
    const pending = [join(root, "client", "index.ts")];
    while (pending.length > 0) {
      const file = pending.pop() as string;
      if (seen.has(file)) continue;
      seen.add(file);
      const source = await readFile(file, "utf8");
      for (const [, specifier] of source.matchAll(/(?:from|import)\s*\(?\s*"([^"]+)"/g)) {
        if (specifier?.startsWith(".")) pending.push(resolve(dirname(file), specifier.replace(/\.js$/, ".ts")));
      }
    }
    const local = [...seen].map((file) => relative(root, file));
    expect(local.filter((file) => !file.startsWith("client/") && !file.startsWith("gen/"))).toEqual([]);
    // Every file of src/client is reachable from index.ts except createClient's, which tests use directly.
    const files = (await readdir(join(root, "client"))).map((name) => `client/${name}`);
    expect(files.filter((file) => !local.includes(file))).toEqual(["client/client.ts"]);
  });
});
