/**
 * Configuration, read once from the environment. A bad value stops the process at start with the
 * variable named, rather than surfacing later as a confusing runtime failure.
 */

import { readFileSync } from "node:fs";

/** Everything the service can be told from outside. */
export interface Config {
  grpcHost: string;
  /** 0 asks the OS for a free port (tests). */
  grpcPort: number;
  /** Port of the HTTP side server (/healthz, /metrics); 0 picks a free one. */
  httpPort: number;
  /** Set → node `pg` against a real Postgres; unset → embedded PGlite in `dataDir`. */
  databaseUrl: string | undefined;
  dataDir: string;
  logLevel: string;
  /** Most user ids accepted by one AddMembers / RemoveMembers / BatchCheck call. */
  maxIdsPerCall: number;
  /**
   * A write that creates users must commit this much earlier before its deadline per new user (µs),
   * beyond the fixed margin: entering them in memory after COMMIT comes before its answer.
   */
  commitReserveUsPerNewUser: number;
  /** Largest gRPC message accepted, in bytes; larger ones get RESOURCE_EXHAUSTED. */
  maxMessageBytes: number;
  /** How long shutdown waits for in-flight calls before cancelling them. */
  shutdownGraceMs: number;
  /** Membership history younger than this stays rebuildable (diff, rollback). */
  historyRetentionMs: number;
  /** How often compaction runs (snapshots, pruning). */
  compactionIntervalMs: number;
  /** Changes since the last snapshot that trigger a new one. */
  snapshotEveryChanges: number;
  /** Client streams: the longest wait for the next message before the call fails. */
  streamIdleMs: number;
  /** Client streams: the longest a stream may stay open. */
  streamMaxMs: number;
  /** Longest a database statement may run (server-side statement_timeout; client-side too). */
  statementTimeoutMs: number;
  /** Longest a statement may wait for a row or table lock (Postgres lock_timeout). */
  lockTimeoutMs: number;
  /** Analytics query runs (evaluations, PopulateFromQuery): longest run and most rows. */
  queryTimeoutMs: number;
  queryRowCap: number;
  /** PreviewQuery: a tighter timeout and row cap. */
  previewTimeoutMs: number;
  previewRowCap: number;
  /** Where analytics queries run (own small pool); unset → the service's database. */
  analyticsDatabaseUrl: string | undefined;
  /** Role analytics queries run as (SET LOCAL ROLE), ideally one that can only SELECT. */
  analyticsRole: string | undefined;
  /** Whether this process runs scheduled evaluations (replicas that only serve may opt out). */
  schedulerEnabled: boolean;
  /** The bootstrap admin token (ADMIN_TOKEN, or the contents of ADMIN_TOKEN_FILE); never logged. */
  adminToken: string | undefined;
  /** Serve a non-loopback address even though no token exists (ALLOW_UNAUTHENTICATED=true). */
  allowUnauthenticated: boolean;
  /** How often API tokens are re-read from the store (revocations on other replicas). */
  tokenRefreshMs: number;
  /** Whether gRPC calls are counted for /metrics (grpc_server_*); false only to measure what counting costs. */
  metricsEnabled: boolean;
  /** TLS for gRPC and HTTP: certificate and key files, and a CA file that makes client certificates required. */
  tls: { certFile: string; keyFile: string; caFile: string | undefined } | undefined;
}

/** A variable that failed validation; main prints it and exits non-zero. */
export class ConfigError extends Error {}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** Reads and validates the configuration from `env` (defaults documented in README.md). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const logLevel = env.LOG_LEVEL ?? "info";
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}; got ${JSON.stringify(logLevel)}`);
  }
  const databaseUrl = nonEmpty(env.DATABASE_URL);
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError("DATABASE_URL must start with postgres:// or postgresql://");
  }
  return {
    grpcHost: nonEmpty(env.GRPC_HOST) ?? "127.0.0.1",
    grpcPort: integer(env, "GRPC_PORT", 50051, 0, 65535),
    httpPort: integer(env, "HTTP_PORT", 9464, 0, 65535),
    databaseUrl,
    dataDir: nonEmpty(env.DATA_DIR) ?? "./data",
    logLevel,
    maxIdsPerCall: integer(env, "MAX_IDS_PER_CALL", 100_000, 1, 10_000_000),
    commitReserveUsPerNewUser: integer(env, "COMMIT_RESERVE_US_PER_NEW_USER", 1, 0, 1_000_000),
    maxMessageBytes: integer(env, "MAX_MESSAGE_BYTES", 64 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    shutdownGraceMs: integer(env, "SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
    historyRetentionMs: integer(env, "HISTORY_RETENTION_DAYS", 30, 1, 3650) * 86_400_000,
    compactionIntervalMs: integer(env, "COMPACTION_INTERVAL_MS", 60_000, 100, 86_400_000),
    snapshotEveryChanges: integer(env, "SNAPSHOT_EVERY_CHANGES", 200, 1, 1_000_000),
    streamIdleMs: integer(env, "STREAM_IDLE_MS", 30_000, 100, 3_600_000),
    streamMaxMs: integer(env, "STREAM_MAX_MS", 3_600_000, 1_000, 86_400_000),
    statementTimeoutMs: integer(env, "DB_STATEMENT_TIMEOUT_MS", 60_000, 100, 3_600_000),
    lockTimeoutMs: integer(env, "DB_LOCK_TIMEOUT_MS", 10_000, 100, 3_600_000),
    queryTimeoutMs: integer(env, "QUERY_TIMEOUT_MS", 300_000, 100, 86_400_000),
    queryRowCap: integer(env, "QUERY_ROW_CAP", 50_000_000, 1, 1_000_000_000),
    previewTimeoutMs: integer(env, "PREVIEW_TIMEOUT_MS", 10_000, 100, 3_600_000),
    previewRowCap: integer(env, "PREVIEW_ROW_CAP", 1_000_000, 1, 100_000_000),
    analyticsDatabaseUrl: postgresUrl(env, "ANALYTICS_DATABASE_URL"),
    analyticsRole: nonEmpty(env.ANALYTICS_ROLE),
    schedulerEnabled: boolean(env, "SCHEDULER_ENABLED", true),
    adminToken: adminToken(env),
    allowUnauthenticated: boolean(env, "ALLOW_UNAUTHENTICATED", false),
    tokenRefreshMs: integer(env, "TOKEN_REFRESH_MS", 2_000, 100, 3_600_000),
    tls: tlsFiles(env),
    metricsEnabled: boolean(env, "METRICS_ENABLED", true),
  };
}

/** Whether `host` (a GRPC_HOST value) only accepts connections from this machine. */
export function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host);
}

/** ADMIN_TOKEN or the first line of ADMIN_TOKEN_FILE: at least 32 characters, no spaces. */
function adminToken(env: NodeJS.ProcessEnv): string | undefined {
  const inline = nonEmpty(env.ADMIN_TOKEN);
  const file = nonEmpty(env.ADMIN_TOKEN_FILE);
  if (inline !== undefined && file !== undefined) throw new ConfigError("set ADMIN_TOKEN or ADMIN_TOKEN_FILE, not both");
  let token = inline;
  let name = "ADMIN_TOKEN";
  if (file !== undefined) {
    name = "ADMIN_TOKEN_FILE";
    try {
      token = (readFileSync(file, "utf8").split(/\r?\n/)[0] ?? "").trim();
    } catch (error: unknown) {
      throw new ConfigError(`ADMIN_TOKEN_FILE ${JSON.stringify(file)} cannot be read: ${(error as Error).message}`);
    }
  }
  if (token === undefined) return undefined;
  // Never echo the value: it is a credential.
  if (token.length < 32 || token.length > 1024 || /\s/.test(token)) {
    throw new ConfigError(`${name} must be 32–1024 characters without spaces (e.g. \`openssl rand -hex 32\`)`);
  }
  if (token.startsWith("sgt_")) throw new ConfigError(`${name} must not start with sgt_ (the prefix of tokens the service issues)`);
  return token;
}

function tlsFiles(env: NodeJS.ProcessEnv): Config["tls"] {
  const certFile = nonEmpty(env.TLS_CERT_FILE);
  const keyFile = nonEmpty(env.TLS_KEY_FILE);
  const caFile = nonEmpty(env.TLS_CA_FILE);
  if (certFile === undefined && keyFile === undefined) {
    if (caFile !== undefined) throw new ConfigError("TLS_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE");
    return undefined;
  }
  if (certFile === undefined || keyFile === undefined)
    throw new ConfigError("TLS_CERT_FILE and TLS_KEY_FILE go together: set both or neither");
  return { certFile, keyFile, caFile };
}

// libpq accepts any connection parameter in the query string, secrets included; anything whose
// name mentions a password or key is masked (sslkey is a path, but a path can name the secret).
const SECRET_PARAM = /pass|key|secret|token/i;

/** The database URL with its password (in the userinfo or the query string) replaced, safe to log. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    for (const name of [...parsed.searchParams.keys()]) {
      if (SECRET_PARAM.test(name)) parsed.searchParams.set(name, "***");
    }
    return parsed.toString();
  } catch {
    return "<unparseable url>";
  }
}

function postgresUrl(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const url = nonEmpty(env[name]);
  if (url !== undefined && !/^postgres(ql)?:\/\//.test(url)) throw new ConfigError(`${name} must start with postgres:// or postgresql://`);
  return url;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value;
}

function boolean(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = nonEmpty(env[name]);
  if (raw === undefined) return fallback;
  if (raw === "true" || raw === "false") return raw === "true";
  throw new ConfigError(`${name} must be true or false; got ${JSON.stringify(raw)}`);
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = nonEmpty(env[name]);
  if (raw === undefined) return fallback;
  // Number() would accept "0x10", "1e3", " 5" and "5.0": only plain decimal digits are meant.
  const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}; got ${JSON.stringify(raw)}`);
  }
  return value;
}
