/**
 * The composition root: builds every part with `new`, in dependency order, and tears them down
 * in reverse. main.ts runs it for real; tests run it in-process on port 0.
 */
import type { Logger } from "pino";
import { AudienceService } from "./audience/audience-service.js";
import { Authenticator } from "./auth/authenticator.js";
import { TokenService } from "./auth/token-service.js";
import { type Config, isLoopbackHost, redactUrl } from "./config.js";
import { KeyedMutex } from "./control/keyed-mutex.js";
import { StartupError, UnavailableError } from "./errors.js";
import { ChangeFeed } from "./feed/change-feed.js";
import { MembershipWatcher } from "./feed/watch.js";
import { GrpcServer } from "./grpc/server.js";
import { startHttpServer } from "./http/http-server.js";
import { createRegistry } from "./metrics/registry.js";
import { serviceMetrics } from "./metrics/service-metrics.js";
import { Scheduler } from "./schedule/scheduler.js";
import { Compactor } from "./service/compaction.js";
import { EvaluationService } from "./service/evaluation-service.js";
import { EventLoader } from "./service/event-loader.js";
import { MemberReads } from "./service/member-reads.js";
import { MemberService } from "./service/member-service.js";
import { MembershipService } from "./service/membership-service.js";
import { ReplicaReads } from "./service/replica-reads.js";
import { SegmentService } from "./service/segment-service.js";
import { loadState, SegmentState } from "./service/segment-state.js";
import { UserRegistry } from "./service/user-registry.js";
import { type AnalyticsSource, openAnalyticsSource } from "./store/analytics-source.js";
import type { Database } from "./store/database.js";
import { EvaluationStore } from "./store/evaluation-store.js";
import { EventsStore } from "./store/events-store.js";
import { migrate } from "./store/migrate.js";
import { PgliteDatabase } from "./store/pglite-database.js";
import { PostgresDatabase } from "./store/postgres-database.js";
import { ScheduleStore } from "./store/schedule-store.js";
import { SegmentStore } from "./store/segment-store.js";
import { timedDatabase } from "./store/timed-database.js";
import { TokenStore } from "./store/token-store.js";
import { UserStore } from "./store/user-store.js";
import { CertificateFiles, grpcServerCredentials } from "./tls/certificates.js";

/** How long /readyz waits for the store to answer before it reports not ready. */
const READY_TIMEOUT_MS = 2_000;

/** A running service. */
export interface App {
  /** The port gRPC is bound to. */
  readonly grpcPort: number;
  /** The port /healthz and /metrics are served on. */
  readonly httpPort: number;
  readonly server: GrpcServer;
  /** Scheduled evaluations; its loop runs unless SCHEDULER_ENABLED=false (tests then call `tick`). */
  readonly scheduler: Scheduler;
  /** The per-segment write locks (tests hold one to queue writes behind it). */
  readonly locks: KeyedMutex;
  /** Re-reads the TLS files (SIGHUP) for new connections; throws, keeping the old ones, when they are bad. No-op without TLS. */
  reloadCertificates(): void;
  /** Drains gRPC (up to the grace period), then closes the database. */
  close(): Promise<void>;
}

/**
 * Binds gRPC and HTTP first (NOT_SERVING, calls get UNAVAILABLE), so a taken port fails in
 * milliseconds rather than after a long load; then opens the store, migrates, rebuilds memory
 * from it, and turns SERVING.
 */
export async function startApp(config: Config, log: Logger, clock: () => Date = () => new Date()): Promise<App> {
  const started = performance.now();
  let tokenStore: TokenStore | undefined;
  // Calls are refused as UNAVAILABLE until the state (tokens included) is loaded.
  const authenticator = new Authenticator({
    tokens: { all: async () => (tokenStore === undefined ? [] : tokenStore.all()) },
    log,
    bootstrapToken: config.adminToken,
    refreshMs: config.tokenRefreshMs,
  });
  const server = new GrpcServer({
    log,
    maxMessageBytes: config.maxMessageBytes,
    maxIdsPerCall: config.maxIdsPerCall,
    streams: { idleMs: config.streamIdleMs, maxMs: config.streamMaxMs },
    authenticator,
    countCalls: config.metricsEnabled,
  });
  const certificates = openCertificates(config);
  const credentials = certificates === undefined ? undefined : grpcServerCredentials(certificates);
  const grpcPort = await server.listen(config.grpcHost, config.grpcPort, credentials).catch((error: unknown) => {
    throw new StartupError(`cannot listen for gRPC on ${address(config.grpcHost, config.grpcPort)}`, { cause: error });
  });
  // Never serves a call: the handlers are installed with the loaded state.
  let state = new SegmentState(new Uint8Array(0));
  let db: Database | undefined;
  // /metrics reads whichever state is current: empty while loading, then the loaded one.
  const metrics = createRegistry({
    get state() {
      return state;
    },
    grpc: server.metrics,
  });
  const recorders = serviceMetrics(metrics, config.databaseUrl === undefined ? "pglite" : "postgres");
  const httpDeps = { health: server.health, metrics, storeReachable: () => answers(db) };
  const http = await startHttpServer(httpDeps, config.grpcHost, config.httpPort, certificates).catch(async (error: unknown) => {
    server.forceShutdown();
    throw new StartupError(`cannot listen for HTTP on ${address(config.grpcHost, config.httpPort)}`, { cause: error });
  });
  log.info(
    {
      host: config.grpcHost,
      port: grpcPort,
      httpPort: http.port,
      tls: certificates === undefined ? "off" : certificates.requiresClientCertificate ? "mTLS" : "on",
    },
    "listening; loading state",
  );
  let compactor: Compactor | undefined;
  let analytics: AnalyticsSource | undefined;
  let scheduler: Scheduler | undefined;
  try {
    db = await openDatabase(config, log);
    // Statements and transactions are timed for /metrics; analytics queries keep the raw store.
    const timed = timedDatabase(db, recorders.stored);
    const applied = await migrate(db);
    if (applied.length > 0) log.info({ applied }, "migrations applied");
    const store = new SegmentStore(timed);
    const userStore = new UserStore(timed);
    tokenStore = new TokenStore(timed);
    await authenticator.load();
    checkExposure(config, authenticator.required, log);
    authenticator.start();
    state = await loadState(store, userStore, (phase, done, total, ms) =>
      log.info({ phase, done, ...(total === undefined ? {} : { total }), ms: Math.round(ms) }, `loading state: ${phase}`),
    );
    log.info({ segments: state.segments.size, users: state.directory.size, ms: Math.round(performance.now() - started) }, "state loaded");
    const locks = new KeyedMutex();
    analytics = openAnalyticsSource({
      db,
      databaseUrl: config.databaseUrl,
      analyticsDatabaseUrl: config.analyticsDatabaseUrl,
      analyticsRole: config.analyticsRole,
      log,
    });
    const source = analytics;
    const segments = new SegmentService({ state, store, clock, locks, planQuery: (sql) => source.explain(sql, config.previewTimeoutMs) });
    const users = new UserRegistry(userStore, state.directory);
    const members = new MemberService({
      state,
      store,
      users,
      clock,
      locks,
      maxIdsPerCall: config.maxIdsPerCall,
      commitReserveUsPerNewUser: config.commitReserveUsPerNewUser,
    });
    const membership = new MembershipService(state, config.maxIdsPerCall, () => clock().getTime());
    const reads = new MemberReads(state, store);
    const audience = new AudienceService({ state, store, now: () => clock().getTime() });
    const replica = new ReplicaReads({
      state,
      maxIdsPerCall: config.maxIdsPerCall,
      maxMessageBytes: config.maxMessageBytes,
      now: () => clock().getTime(),
    });
    const feed = new ChangeFeed();
    state.listeners.add(feed);
    const watcher = new MembershipWatcher({ state, store, feed, maxMessageBytes: config.maxMessageBytes });
    compactor = new Compactor({
      state,
      store,
      clock,
      log,
      policy: { maxChanges: config.snapshotEveryChanges, minBytes: 1 << 20, retentionMs: config.historyRetentionMs },
      recordStorage: recorders.storage,
    });
    compactor.start(config.compactionIntervalMs);
    const events = new EventLoader(new EventsStore(db, config.databaseUrl));
    const evaluations = new EvaluationService({
      state,
      members,
      evaluations: new EvaluationStore(timed),
      recordEvaluation: recorders.evaluated,
      runner: source,
      clock,
      limits: {
        timeoutMs: config.queryTimeoutMs,
        rowCap: config.queryRowCap,
        previewTimeoutMs: config.previewTimeoutMs,
        previewRowCap: config.previewRowCap,
      },
    });
    const loaded = state;
    scheduler = new Scheduler({
      clock,
      store: new ScheduleStore(timed),
      log,
      evaluate: async (id) => void (await evaluations.evaluate(id, "SCHEDULE")),
      listSegments: () => loaded.segments.values(),
      onPlanned: (id, planned) => loaded.plannedRuns.set(id, planned),
      onStarted: (lateMs) => recorders.scheduleStarted(lateMs / 1000),
    });
    if (config.schedulerEnabled) scheduler.start();
    const tokens = new TokenService({ store: tokenStore, authenticator, clock });
    server.serve({ segments, members, reads, membership, audience, state, events, evaluations, replica, watcher, tokens });
    log.info({ host: config.grpcHost, port: grpcPort, httpPort: http.port, store: db.kind }, "serving gRPC");
    const opened = db;
    const running = compactor;
    const schedules = scheduler;
    return {
      grpcPort,
      httpPort: http.port,
      server,
      scheduler: schedules,
      locks,
      reloadCertificates: () => certificates?.reload(),
      close: async () => {
        // Watch streams never end on their own: end them first so the drain need not wait out the grace period.
        feed.close();
        await server.shutdown(config.shutdownGraceMs);
        state.filters.close();
        authenticator.stop();
        await schedules.stop();
        await running.stop();
        await source.close();
        http.server.close();
        http.server.closeAllConnections();
        await opened.close();
      },
    };
  } catch (error: unknown) {
    authenticator.stop();
    server.forceShutdown();
    http.server.close();
    http.server.closeAllConnections();
    await scheduler?.stop().catch(() => undefined);
    await compactor?.stop().catch(() => undefined);
    await analytics?.close().catch(() => undefined);
    await db?.close().catch(() => undefined);
    throw error;
  }
}

/** Whether `db` answers a trivial query within READY_TIMEOUT_MS. */
async function answers(db: Database | undefined): Promise<boolean> {
  if (db === undefined) return false;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), READY_TIMEOUT_MS);
  });
  try {
    return await Promise.race([db.query("SELECT 1").then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The TLS files the configuration names, read and checked now (a bad file stops the start). */
function openCertificates(config: Config): CertificateFiles | undefined {
  if (config.tls === undefined) return undefined;
  try {
    return new CertificateFiles(config.tls);
  } catch (error: unknown) {
    throw new StartupError("cannot use the TLS files", { cause: error });
  }
}

/**
 * Without tokens anyone who reaches the port is an admin: that is only allowed on loopback, or
 * on another address when ALLOW_UNAUTHENTICATED=true says it is meant (warned at every start).
 */
function checkExposure(config: Config, authenticated: boolean, log: Logger): void {
  if (authenticated) {
    log.info({ adminToken: config.adminToken !== undefined }, "authentication on: every call needs an API token");
  } else if (isLoopbackHost(config.grpcHost)) {
    log.info({ host: config.grpcHost }, "authentication off (no API token exists or is configured): serving loopback only");
  } else if (config.allowUnauthenticated) {
    log.warn({ host: config.grpcHost }, "ALLOW_UNAUTHENTICATED=true: serving a non-loopback address with no authentication");
  } else {
    throw new StartupError(
      `GRPC_HOST=${config.grpcHost} is not a loopback address and no API token exists or is configured: set ADMIN_TOKEN or ADMIN_TOKEN_FILE, ` +
        "or ALLOW_UNAUTHENTICATED=true to serve it without authentication",
    );
  }
}

function address(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The store the configuration names: Postgres when DATABASE_URL is set, else PGlite in DATA_DIR. */
export async function openDatabase(config: Config, log: Logger): Promise<Database> {
  if (config.databaseUrl !== undefined) {
    const where = redactUrl(config.databaseUrl);
    log.info({ database: where }, "using Postgres");
    const db = new PostgresDatabase(config.databaseUrl, log, { statementMs: config.statementTimeoutMs, lockMs: config.lockTimeoutMs });
    // Connect once now, so an unreachable server is reported with its address and the cause.
    await db.query("SELECT 1").catch(async (error: unknown) => {
      await db.close().catch(() => undefined);
      throw new StartupError(`cannot connect to Postgres at ${where}`, { cause: error instanceof UnavailableError ? error.cause : error });
    });
    return db;
  }
  log.info({ dataDir: config.dataDir }, "using embedded PGlite");
  return PgliteDatabase.open(config.dataDir, config.lockTimeoutMs);
}
