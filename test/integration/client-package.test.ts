/**
 * The client as another project sees it: the package is built with tsconfig.build.json (into a
 * scratch copy, so a concurrent `npm run build` of the bench is not disturbed), linked by name
 * into a scratch TypeScript project, which type-checks the README's client example (and a few
 * type-level checks) with strict settings and runs it against a live service.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startService, type TestService } from "../support/service.js";
import { STORES, type TestStore } from "../support/stores.js";

const run = promisify(execFile);
const repo = resolve(".");
const tsc = join(repo, "node_modules", "typescript", "bin", "tsc");

/** Type-level checks: the declarations are real types, and only `./client` is exported. */
const TYPE_CHECKS = `
import { Code, type SegmentsClient, SegmentsError, type SegmentsClientOptions, SegmentType } from "segments/client";

export async function checks(client: SegmentsClient): Promise<bigint> {
  // @ts-expect-error: requests are typed by their message
  await client.segments.createSegment({ nmae: "typo", type: SegmentType.STATIC });
  // @ts-expect-error: each service has its own methods
  await client.membership.createSegment({ name: "x" });
  for await (const change of client.membership.watchMembership({ segmentIds: ["s"] })) {
    const version: bigint = change.version;
    return version;
  }
  const options: SegmentsClientOptions = { deadlines: { membership: 500, stream: null }, retry: { maxAttempts: 2 }, tls: { insecure: true } };
  void options;
  const answer = await client.membership.checkMembership({ userId: "a", segmentIds: ["s"] }, { timeoutMs: 100, signal: AbortSignal.timeout(50) });
  const error = new SegmentsError(Code.NOT_FOUND, "x");
  const code: Code = error.code;
  void code;
  return answer.results[0]?.version ?? 0n;
}
`;

/** Deep imports past the exports map fail to resolve, for the compiler as for Node. */
const DEEP_IMPORT = `
// @ts-expect-error: the server is not part of the package's surface
import type { App } from "segments/dist/app.js";
export type Unused = App;
`;

describe.each(STORES.filter((kind) => kind.name === "pglite"))("segments/client as a dependency ($name service)", (kind) => {
  let dir: string;
  let store: TestStore;
  let service: TestService;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "segments-client-package-"));
    store = await kind.create();
    service = await startService(store);
  });
  afterAll(async () => {
    await service.stop();
    await store.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it("builds, type-checks in a consumer project, and runs the README example", async () => {
    // The package: this repository's package.json and node_modules, its build output in dist/.
    const pkg = join(dir, "segments");
    await mkdir(pkg);
    await writeFile(join(pkg, "package.json"), await readFile("package.json"));
    await symlink(join(repo, "node_modules"), join(pkg, "node_modules"), "dir");
    await run(process.execPath, [tsc, "-p", join(repo, "tsconfig.build.json"), "--outDir", join(pkg, "dist")]);

    // The consumer: depends on it by name, as `npm install file:…` would link it.
    const consumer = join(dir, "consumer");
    await mkdir(join(consumer, "node_modules"), { recursive: true });
    await symlink(pkg, join(consumer, "node_modules", "segments"), "dir");
    await symlink(join(repo, "node_modules", "@types"), join(consumer, "node_modules", "@types"), "dir");
    await writeFile(join(consumer, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
    await writeFile(
      join(consumer, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          noUncheckedIndexedAccess: true,
          exactOptionalPropertyTypes: true,
          verbatimModuleSyntax: true,
          // As most projects do; the type-level checks still fail if the declarations degrade to any.
          skipLibCheck: true,
          types: ["node"],
          outDir: "out",
        },
        include: ["*.ts"],
      }),
    );
    const readme = await readFile("README.md", "utf8");
    const example = /<!-- client-example:start -->\n```ts\n([\s\S]*?)```\n<!-- client-example:end -->/.exec(readme)?.[1];
    expect(example, "README has a client example").toBeDefined();
    await writeFile(join(consumer, "example.ts"), example ?? "");
    await writeFile(join(consumer, "type-checks.ts"), TYPE_CHECKS);
    await writeFile(join(consumer, "deep-import.ts"), DEEP_IMPORT);

    const typecheck = await run(process.execPath, [tsc, "-p", consumer]).then(
      () => "",
      (error: { stdout: string }) => error.stdout,
    );
    expect(typecheck, "the consumer type-checks").toBe("");

    const { stdout } = await run(process.execPath, [join(consumer, "out", "example.js")], {
      cwd: consumer,
      env: { PATH: process.env.PATH ?? "", SEGMENTS_ADDRESS: service.address },
    });
    expect(stdout).toMatch(/^alice is a member: true \(version 1\)$/m);
    expect(stdout).toMatch(/^refused: user_id \(INVALID_ARGUMENT, request [0-9a-f-]{36}\)$/m);
  });
});
