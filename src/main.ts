/**
 * Process entry point: configuration, logging, tracing, start, and shutdown on SIGTERM / SIGINT.
 * The app is imported only after tracing has started: its instrumentations must see @grpc/grpc-js
 * and pg load (src/telemetry/tracing.ts).
 */
import { setFlagsFromString } from "node:v8";
import type { App } from "./app.js";
import { ConfigError, loadConfig } from "./config.js";
import { createProcessLog, describeError, type ProcessLog } from "./logging.js";
import { startTracing } from "./telemetry/tracing.js";

/**
 * How far (in percent) the old generation may grow past what survived the last full collection,
 * set here unless `node --heap-growing-percent=N` says otherwise. Our live JS heap stays small
 * (~19 MB at 1M users: ids and bitmaps live outside it), and V8's own factor (1.2-1.3x here) then
 * leaves less room below the next limit than the new space's size. V8 reads that as "the limit is
 * near" and starts incremental marking again right after each full collection finishes: in a
 * batch-check profile, a Mark-Compact every 72-203 ms (109 in one 10 s run) and 24% of the
 * service's busy time in GC. 4x (V8's own upper bound) leaves room for the young generation: 4
 * full collections in the same run, all at start-up.
 */
const HEAP_GROWING_PERCENT = 300;

/** Sets HEAP_GROWING_PERCENT, unless node was started with its own value (0 restores V8's choice). */
function tuneGarbageCollector(): void {
  if (process.execArgv.some((arg) => arg.startsWith("--heap-growing-percent") || arg.startsWith("--heap_growing_percent"))) return;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

async function main(): Promise<void> {
  tuneGarbageCollector();
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (error: unknown) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`configuration error: ${error.message}\n`);
    process.exit(2);
  }
  const logging = createProcessLog({ level: config.logLevel, base: { service: "segments" } });
  const { log } = logging;
  let stopTracing: Awaited<ReturnType<typeof startTracing>>;
  let app: App;
  try {
    stopTracing = await startTracing();
    if (stopTracing !== undefined) log.info({ endpoint: process.env.OTEL_EXPORTER_OTLP_ENDPOINT }, "tracing to OTLP");
    const { startApp } = await import("./app.js");
    app = await startApp(config, log);
  } catch (error: unknown) {
    // stderr as well as the log: whoever starts the process reads the reason there.
    process.stderr.write(`segments failed to start: ${describeError(error)}\n`);
    // Not log.fatal: pino follows it with the sink's flushSync, which spins forever on EPIPE.
    log.error({ err: error }, "failed to start");
    return logging.exit(1);
  }
  handleSignals(logging, async (signal) => {
    log.info({ signal }, "shutting down");
    await app.close();
    await stopTracing?.();
  });
  // SIGHUP: renewed certificates for new connections, without dropping the process or its calls.
  process.on("SIGHUP", () => {
    try {
      app.reloadCertificates();
      log.info("SIGHUP: TLS certificates reloaded");
    } catch (error: unknown) {
      log.error({ err: error }, "SIGHUP: cannot reload the TLS certificates; still serving the previous ones");
    }
  });
}

/** The first SIGTERM / SIGINT closes the app; a second one exits at once. */
function handleSignals({ log, exit }: ProcessLog, close: (signal: NodeJS.Signals) => Promise<void>): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, "second signal; exiting now");
      void exit(1, 0);
      return;
    }
    stopping = true;
    close(signal).then(
      () => {
        log.info("stopped");
        return exit(0);
      },
      (error: unknown) => {
        log.error({ err: error }, "shutdown failed");
        return exit(1);
      },
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`segments failed to start: ${describeError(error)}\n`);
  process.exit(1);
});
