/**
 * Runs the real service in-process on port 0 against a test store, with typed clients, and can
 * restart it on the same store (the durability tests' "kill and come back").
 */
import type { Logger } from "pino";
import { afterAll, beforeAll } from "vitest";
import { type App, startApp } from "../../src/app.js";
import { type Client, createClient } from "../../src/client/client.js";
import { loadConfig } from "../../src/config.js";
import { Health } from "../../src/gen/grpc/health/v1/health_pb.js";
import { MembershipService } from "../../src/gen/segments/v1/membership_service_pb.js";
import { SegmentService } from "../../src/gen/segments/v1/segment_service_pb.js";
import { createLogger } from "../../src/logging.js";
import type { StoreKind, TestStore } from "./stores.js";

/** A running service and clients connected to it. */
export interface TestService {
  app: App;
  address: string;
  segments: Client<typeof SegmentService>;
  membership: Client<typeof MembershipService>;
  health: Client<typeof Health>;
  /** Stops the service and its clients. */
  stop(): Promise<void>;
}

/** Starts the service on `store` (extra settings in `env`). */
export async function startService(
  store: TestStore,
  env: Record<string, string> = {},
  log: Logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? "silent" }),
  clock?: () => Date,
): Promise<TestService> {
  const config = loadConfig({ GRPC_PORT: "0", HTTP_PORT: "0", SHUTDOWN_GRACE_MS: "2000", ...store.env, ...env });
  const app = await startApp(config, log, clock);
  const address = `127.0.0.1:${app.grpcPort}`;
  const segments = createClient(SegmentService, address);
  const membership = createClient(MembershipService, address);
  const health = createClient(Health, address);
  return {
    app,
    address,
    segments,
    membership,
    health,
    stop: async () => {
      segments.close();
      membership.close();
      health.close();
      await app.close();
    },
  };
}

/** A service on a fresh store, started before the enclosing describe block's tests. */
export interface ServiceFixture {
  store: TestStore;
  /** Replaceable: a test may stop it and start another on the same store. */
  service: TestService;
}

/** Starts a service on a fresh store of `kind` for the enclosing describe block; tears both down after. */
export function useService(kind: StoreKind, env: Record<string, string> = {}): ServiceFixture {
  const fixture = {} as ServiceFixture;
  beforeAll(async () => {
    fixture.store = await kind.create();
    fixture.service = await startService(fixture.store, env);
  });
  afterAll(async () => {
    await fixture.service.stop();
    await fixture.store.drop();
  });
  return fixture;
}
