/**
 * The `segments` CLI as a real process against a real server: token commands and whoami, human
 * and --json output, and exit codes that are the failed call's gRPC status.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { status as code } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
