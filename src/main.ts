/**
 * Process entry point: configuration, logging, tracing, start, and shutdown on SIGTERM / SIGINT.
 * The app is imported only after tracing has started: its instrumentations must see @grpc/grpc-js
 * and pg load (src/telemetry/tracing.ts).
 */
import type { App } from "./app.js";
import { ConfigError, loadConfig } from "./config.js";
import { createProcessLog, describeError, type ProcessLog } from "./logging.js";
import { startTracing } from "./telemetry/tracing.js";

async function main(): Promise<void> {
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
