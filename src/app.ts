/**
 * The composition root: builds every part with `new`, in dependency order, and tears them down
 * in reverse. main.ts runs it for real; tests run it in-process on port 0.
 */
import { mkdir } from "node:fs/promises";
import type { Logger } from "pino";
import { type Config, redactUrl } from "./config.js";
import { GrpcServer } from "./grpc/server.js";
import { startHttpServer } from "./http/http-server.js";
import { Compactor } from "./service/compaction.js";
import { KeyedMutex } from "./service/keyed-mutex.js";
import { MemberReads } from "./service/member-reads.js";
import { MemberService } from "./service/member-service.js";
import { MembershipService } from "./service/membership-service.js";
import { SegmentService } from "./service/segment-service.js";
import { loadState } from "./service/segment-state.js";
import type { Database } from "./store/database.js";
import { ImportStagingStore } from "./store/import-staging-store.js";
import { migrate } from "./store/migrate.js";
import { PgliteDatabase } from "./store/pglite-database.js";
import { PostgresDatabase } from "./store/postgres-database.js";
import { SegmentStore } from "./store/segment-store.js";

/** A running service. */
export interface App {
  /** The port gRPC is bound to. */
  readonly grpcPort: number;
  /** The port /healthz and /metrics are served on. */
  readonly httpPort: number;
  readonly server: GrpcServer;
  /** Drains gRPC (up to the grace period), then closes the database. */
  close(): Promise<void>;
}

/** Opens the store, rebuilds memory from it, and starts serving gRPC. */
export async function startApp(config: Config, log: Logger, clock: () => Date = () => new Date()): Promise<App> {
  const started = performance.now();
  const db = await openDatabase(config, log);
  try {
    const applied = await migrate(db);
    if (applied.length > 0) log.info({ applied }, "migrations applied");
    const store = new SegmentStore(db);
    const state = await loadState(store);
    log.info({ segments: state.segments.size, users: state.directory.size, ms: Math.round(performance.now() - started) }, "state loaded");
    const locks = new KeyedMutex();
    const segments = new SegmentService({ state, store, clock, locks });
    const staging = new ImportStagingStore(db);
    const members = new MemberService({ state, store, staging, clock, locks, maxIdsPerCall: config.maxIdsPerCall });
    const membership = new MembershipService(state, config.maxIdsPerCall);
    const reads = new MemberReads(state, store);
    const compactor = new Compactor({
      state,
      store,
      staging,
      clock,
      log,
      policy: { maxChanges: config.snapshotEveryChanges, minBytes: 1 << 20, retentionMs: config.historyRetentionMs },
    });
    compactor.start(config.compactionIntervalMs);
    const server = new GrpcServer({
      segments,
      members,
      reads,
      membership,
      state,
      log,
      maxMessageBytes: config.maxMessageBytes,
      maxIdsPerCall: config.maxIdsPerCall,
      streams: { idleMs: config.streamIdleMs, maxMs: config.streamMaxMs },
    });
    const grpcPort = await server.listen(config.grpcHost, config.grpcPort);
    const http = await startHttpServer({ state, health: server.health, calls: server.calls }, config.grpcHost, config.httpPort);
    log.info({ host: config.grpcHost, port: grpcPort, httpPort: http.port, store: db.kind }, "serving gRPC");
    return {
      grpcPort,
      httpPort: http.port,
      server,
      close: async () => {
        await server.shutdown(config.shutdownGraceMs);
        await compactor.stop();
        http.server.close();
        http.server.closeAllConnections();
        await db.close();
      },
    };
  } catch (error: unknown) {
    await db.close().catch(() => undefined);
    throw error;
  }
}

/** The store the configuration names: Postgres when DATABASE_URL is set, else PGlite in DATA_DIR. */
export async function openDatabase(config: Config, log: Logger): Promise<Database> {
  if (config.databaseUrl !== undefined) {
    log.info({ database: redactUrl(config.databaseUrl) }, "using Postgres");
    return new PostgresDatabase(config.databaseUrl, log, { statementMs: config.statementTimeoutMs, lockMs: config.lockTimeoutMs });
  }
  await mkdir(config.dataDir, { recursive: true });
  log.info({ dataDir: config.dataDir }, "using embedded PGlite");
  return PgliteDatabase.open(config.dataDir, config.lockTimeoutMs);
}
