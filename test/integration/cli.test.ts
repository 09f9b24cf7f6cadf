/**
 * The `segments` CLI as a real process against a real server: token commands and whoami, human
 * and --json output, and exit codes that are the failed call's gRPC status.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { status as code } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ImportMode } from "../../src/gen/segments/v1/segment_service_pb.js";
import { startService, type TestService } from "../support/service.js";
import { storeKind, type TestStore } from "../support/stores.js";

const run = promisify(execFile);
const ADMIN_TOKEN = randomBytes(32).toString("hex");

describe("the segments CLI", () => {
  let store: TestStore;
  let service: TestService;

  /** Runs the CLI; resolves to its exit code and output (never rejects on a non-zero exit). */
  const cli = async (args: string[], token: string | null = ADMIN_TOKEN) => {
    const env = {
      PATH: process.env.PATH ?? "",
      SEGMENTS_ADDRESS: service.address,
      ...(token === null ? {} : { SEGMENTS_TOKEN: token }),
    };
    try {
      const { stdout, stderr } = await run(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], { env });
      return { exit: 0, stdout, stderr };
    } catch (error: unknown) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { exit: failed.code, stdout: failed.stdout, stderr: failed.stderr };
    }
  };

  beforeAll(async () => {
    store = await storeKind("postgres").create();
    service = await startService(store, { ADMIN_TOKEN });
  });
  afterAll(async () => {
    await service.stop();
    await store.drop();
  });

  it("creates, lists and revokes a token, and exits with the gRPC code when a call fails", async () => {
    const created = await cli(["--json", "token", "create", "--name", "campaign sender", "--role", "reader"]);
    expect(created.exit).toBe(0);
    const made = JSON.parse(created.stdout) as { token: { id: string; role: string }; bearerToken: string };
    expect(made.token.role).toBe("reader");
    expect(made.bearerToken).toMatch(new RegExp(`^sgt_${made.token.id}_`));

    const who = await cli(["--json", "whoami"], made.bearerToken);
    expect(JSON.parse(who.stdout)).toEqual({ authenticated: true, tokenId: made.token.id, name: "campaign sender", role: "reader" });
    expect((await cli(["whoami"], made.bearerToken)).stdout).toBe(`campaign sender (token ${made.token.id}): reader\n`);

    const listed = await cli(["token", "list"]);
    expect(listed.stdout.split("\n")[0]).toMatch(/^ID\s+NAME\s+ROLE\s+CREATED\s+CREATED BY\s+REVOKED$/);
    expect(listed.stdout).toContain(made.token.id);
    expect(listed.stdout).not.toContain(made.bearerToken.slice(17));

    // A reader may not manage tokens.
    const denied = await cli(["token", "list"], made.bearerToken);
    expect(denied.exit).toBe(code.PERMISSION_DENIED);
    expect(denied.stderr).toContain("PERMISSION_DENIED: ListApiTokens needs the admin role");

    expect((await cli(["token", "revoke", made.token.id])).exit).toBe(0);
    expect((await cli(["whoami"], made.bearerToken)).exit).toBe(code.UNAUTHENTICATED);
    expect((await cli(["whoami"], null)).exit).toBe(code.UNAUTHENTICATED);
    const listedAll = JSON.parse((await cli(["--json", "token", "list", "--all"])).stdout) as { id: string; revokedBy?: string }[];
    expect(listedAll.find((t) => t.id === made.token.id)?.revokedBy).toBe("ADMIN_TOKEN");
    expect((await cli(["token", "revoke", "zzzzzzzzzzzz"])).exit).toBe(code.NOT_FOUND);
    expect((await cli(["token", "revoke", "nope"])).exit).toBe(code.INVALID_ARGUMENT);
  });

  it("exits 64 on a command-line mistake and names it", async () => {
    const wrong = await cli(["token", "create", "--name", "x", "--role", "owner"]);
    expect(wrong.exit).toBe(64);
    expect(wrong.stderr).toContain("Allowed choices are reader, writer, admin");
    expect((await cli(["frobnicate"])).exit).toBe(64);
  });

  it("exits UNAVAILABLE when nothing listens", async () => {
    const env = { PATH: process.env.PATH ?? "", SEGMENTS_ADDRESS: "127.0.0.1:1" };
    const failed = await run(process.execPath, ["--import", "tsx", "src/cli/main.ts", "whoami"], { env }).then(
      () => undefined,
      (e: unknown) => e as { code: number },
    );
    expect(failed?.code).toBe(code.UNAVAILABLE);
  });
});

describe("the segments CLI on segments and members", () => {
  let store: TestStore;
  let service: TestService;
  let dir: string;
  const cli = async (...args: string[]) => {
    const env = { PATH: process.env.PATH ?? "", SEGMENTS_ADDRESS: service.address };
    try {
      const { stdout, stderr } = await run(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], { env, maxBuffer: 64 << 20 });
      return { exit: 0, stdout, stderr };
    } catch (error: unknown) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { exit: failed.code, stdout: failed.stdout, stderr: failed.stderr };
    }
  };
  const json = async (...args: string[]) => {
    const result = await cli("--json", ...args);
    expect(result.exit, result.stderr).toBe(0);
    return JSON.parse(result.stdout);
  };

  beforeAll(async () => {
    store = await storeKind("postgres").create();
    service = await startService(store);
    dir = await mkdtemp(join(tmpdir(), "segments-cli-"));
  });
  afterAll(async () => {
    await service.stop();
    await store.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it("manages a static segment end to end, with tables for people and JSON for scripts", async () => {
    const created = await json("create", "CLI static", "--description", "made by the CLI");
    const id = created.segment.id as string;
    expect(created.segment).toMatchObject({ name: "CLI static", type: "SEGMENT_TYPE_STATIC", status: "SEGMENT_STATUS_DRAFT" });
    expect((await cli("get", id)).stdout).toMatch(/status:\s+DRAFT/);
    expect((await json("activate", id)).segment.status).toBe("SEGMENT_STATUS_ACTIVE");
    expect((await cli("add", id, "alice", "bob", "carol")).stdout).toContain("added 3");
    expect((await cli("remove", id, "bob")).stdout).toContain("removed 1");
    expect((await json("check", "alice", id)).results[0]).toMatchObject({ segmentId: id, member: true });
    expect((await cli("check", "bob", id)).stdout).toMatch(new RegExp(`${id}\\s+no`));
    expect((await cli("count", "--include", id)).stdout).toBe("2\n");
    const listed = await cli("list");
    expect(listed.stdout.split("\n")[0]).toMatch(/^ID\s+NAME\s+TYPE\s+STATUS\s+MEMBERS\s+VERSION$/);
    expect(listed.stdout).toContain("CLI static");
    expect((await json("update", id, "--description", "changed")).segment.description).toBe("changed");
    const diff = await json("diff", id, "--from", "1");
    // Proto JSON leaves out fields at their zero value (enteredCount 0).
    expect(diff).toMatchObject({ leftCount: "1", leftUserIds: ["bob"] });
    expect(diff.enteredCount).toBeUndefined();
    expect((await json("rollback", id, "--to", "1")).memberCount).toBe("3");
    for (const [command, status] of [
      ["pause", "PAUSED"],
      ["resume", "ACTIVE"],
      ["archive", "ARCHIVED"],
      ["restore", "PAUSED"],
    ]) {
      expect((await cli(command as string, id)).stdout).toBe(`${id} is ${status}\n`);
    }
    const history = await cli("history", id);
    expect(history.stdout.split("\n")[0]).toMatch(/^TIME\s+ACTION\s+FROM\s+TO\s+CALLER/);
    expect(history.stdout).toContain("RESTORE");
    // Exit codes are the gRPC status of the failed call.
    expect((await cli("get", "00000000-0000-4000-8000-000000000000")).exit).toBe(code.NOT_FOUND);
    expect((await cli("create", "")).exit).toBe(code.INVALID_ARGUMENT);
    expect((await cli("delete", id)).exit).toBe(code.FAILED_PRECONDITION);
  });

  it("imports 1,000,000 ids from a file with progress, the same as a direct ImportMembers, and exports them back", async () => {
    const ids = Array.from({ length: 1_000_000 }, (_, n) => `cli_user_${n}`);
    const file = join(dir, "ids.txt");
    await writeFile(file, `${ids.join("\n")}\nbad\u0000id\n`);
    const viaCli = (await json("create", "CLI import")).segment.id as string;
    const direct = (await json("create", "Direct import")).segment.id as string;
    const imported = await cli("--json", "import", viaCli, file);
    expect(imported.exit, imported.stderr).toBe(0);
    expect(imported.stderr).toMatch(/import .*\d+ ids/);
    expect(JSON.parse(imported.stdout)).toMatchObject({ added: "1000000", invalid: "1", invalidLines: [{ line: "1000001" }] });
    await service.segments.importMembers(
      (function* () {
        for (let at = 0; at < ids.length; at += 100_000)
          yield { segmentId: direct, mode: ImportMode.ADD, userIds: ids.slice(at, at + 100_000) };
      })(),
    );
    for (const id of [viaCli, direct]) await cli("activate", id);
    expect((await cli("count", "--include", viaCli, "--exclude", direct)).stdout).toBe("0\n");
    expect((await cli("count", "--include", direct, "--exclude", viaCli)).stdout).toBe("0\n");
    const out = join(dir, "export.txt");
    const exported = await cli("export", "--include", viaCli, "--output", out);
    expect(exported.stdout).toBe(`exported 1000000 ids to ${out}\n`);
    expect(exported.stderr).toContain("export");
    const back = (await readFile(out, "utf8")).trim().split("\n");
    expect(new Set(back)).toEqual(new Set(ids));
  });

  it("imports one column of a CSV file", async () => {
    const file = join(dir, "users.csv");
    await writeFile(file, "email,user\na@example.com,u1\nb@example.com,u2\n");
    const id = (await json("create", "CLI csv")).segment.id as string;
    expect(await json("import", id, file, "--csv-column", "user", "--no-progress")).toMatchObject({ added: "2" });
    const wrong = await cli("import", id, file, "--csv-column", "nope", "--no-progress");
    expect(wrong.stderr).toContain('the CSV has no column "nope"');
    expect(wrong.exit).toBe(1);
  });

  it("runs the README's CLI walkthrough as written", async () => {
    const readme = await readFile("README.md", "utf8");
    const block = /<!-- cli-session:start -->\n```sh\n([\s\S]*?)```\n<!-- cli-session:end -->/.exec(readme)?.[1];
    expect(block, "README has a CLI session block").toBeDefined();
    const script = `set -euo pipefail\nsegments() { node --import tsx src/cli/main.ts "$@"; }\n${block ?? ""}`;
    const { stdout } = await run("bash", ["-c", script], { env: { PATH: process.env.PATH ?? "", SEGMENTS_ADDRESS: service.address } });
    expect(stdout).toMatch(/\s+yes\s+2\n/);
    expect(stdout).toContain("added 2, removed 0");
    expect(stdout).toContain("\n4\n");
    expect(stdout).toContain("alice\ncarol\ndave\nerin\n");
    expect(stdout).toContain("ACTIVATE");
  });

  it("runs and previews a dynamic segment's query", async () => {
    const sql = "SELECT 'd' || g AS user_id FROM generate_series(1, 5) g";
    const id = (await json("create", "CLI dynamic", "--type", "dynamic", "--sql", sql)).segment.id as string;
    await cli("activate", id);
    expect((await json("evaluate", id)).evaluation).toMatchObject({ added: "5", total: "5" });
    expect((await cli("evaluations", id)).stdout).toContain("+5 −0 = 5");
    expect(await json("preview", "--sql", sql, "--sample", "2")).toMatchObject({ count: "5" });
  });
});
