import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, redactUrl } from "../../src/config.js";

describe("loadConfig", () => {
  it("defaults to the embedded store on 127.0.0.1:50051", () => {
    expect(loadConfig({})).toMatchObject({
      grpcHost: "127.0.0.1",
      grpcPort: 50051,
      databaseUrl: undefined,
      dataDir: "./data",
      maxIdsPerCall: 100_000,
    });
  });

  it.each([
    ["GRPC_PORT", "70000"],
    ["MAX_IDS_PER_CALL", "0"],
    ["LOG_LEVEL", "loud"],
    ["DATABASE_URL", "mysql://x"],
    ["SHUTDOWN_GRACE_MS", "1.5"],
  ])("fails naming %s=%s", (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(name);
  });

  it("redacts the password from database URLs", () => {
    expect(redactUrl("postgres://app:s3cret@db:5432/segments")).toBe("postgres://app:***@db:5432/segments");
  });
});
