/**
 * `npm run fuzz -- --requests 100000 [--seed N] [--store pglite|postgres]`: the long form of
 * test/integration/fuzz.test.ts. Starts the service in this process on a fresh store, seeds it,
 * fuzzes every method, prints requests by method and by status code, the longest event-loop stall
 * and the duration, and exits 1 when any promise was broken.
 */
import { parseArgs } from "node:util";
import pino from "pino";
import { startApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { formatReport, runFuzz, seedState } from "../test/support/fuzz.js";
import { STORES } from "../test/support/stores.js";

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      requests: { type: "string", default: "100000" },
      seed: { type: "string", default: "20261129" },
      store: { type: "string", default: "pglite" },
      failures: { type: "string", default: "10" },
    },
  });
  const kind = STORES.find((s) => s.name === values.store);
  if (kind === undefined) throw new Error("--store must be pglite or postgres");
  const store = await kind.create();
  // Unexpected errors (the ones behind an INTERNAL) are logged by the server; show them.
  const app = await startApp(
    loadConfig({ GRPC_PORT: "0", HTTP_PORT: "0", SHUTDOWN_GRACE_MS: "2000", ...store.env }),
    pino({ level: process.env.LOG_LEVEL ?? "fatal" }, pino.destination(2)),
  );
  try {
    const address = `127.0.0.1:${app.grpcPort}`;
    const pools = await seedState(address);
    const report = await runFuzz(
      {
        address,
        seed: Number(values.seed),
        requests: Number(values.requests),
        progress: (line) => process.stderr.write(`[fuzz] ${line}\n`),
      },
      pools,
    );
    process.stdout.write(`${formatReport(report, Number(values.failures))}\n`);
    process.exitCode = report.failures.length === 0 ? 0 : 1;
  } finally {
    await app.close();
    await store.drop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`fuzz failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(2);
});
