import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
    // Number() accepts all of these; none is a plain decimal integer.
    ["GRPC_PORT", "0x10"],
    ["GRPC_PORT", "1e3"],
    ["GRPC_PORT", " 5"],
    ["GRPC_PORT", "5.0"],
    ["GRPC_PORT", "+5"],
    ["GRPC_PORT", "0b11"],
    ["HTTP_PORT", "-1"],
    ["ADMIN_TOKEN", "too-short"],
    ["ADMIN_TOKEN", `${"x".repeat(20)} ${"y".repeat(20)}`],
    ["ADMIN_TOKEN", `sgt_${"x".repeat(40)}`],
    ["ADMIN_TOKEN_FILE", "/nonexistent/admin-token"],
    ["ALLOW_UNAUTHENTICATED", "yes"],
    ["TOKEN_REFRESH_MS", "10"],
    ["TLS_CERT_FILE", "/only/the/cert.pem"],
    ["TLS_CA_FILE", "/only/the/ca.pem"],
  ])("fails naming %s=%s", (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(name);
  });

  it("never echoes a refused ADMIN_TOKEN", () => {
    expect(() => loadConfig({ ADMIN_TOKEN: "hunter2-secret" })).toThrow(/^(?!.*hunter2)/);
  });

  it("reads the admin token from the first line of ADMIN_TOKEN_FILE, and not together with ADMIN_TOKEN", () => {
    const dir = mkdtempSync(join(tmpdir(), "segments-config-"));
    const file = join(dir, "token");
    writeFileSync(file, `${"t".repeat(40)}\n`);
    try {
      expect(loadConfig({ ADMIN_TOKEN_FILE: file }).adminToken).toBe("t".repeat(40));
      expect(() => loadConfig({ ADMIN_TOKEN_FILE: file, ADMIN_TOKEN: "u".repeat(40) })).toThrow(/not both/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("takes TLS files together, the CA only with them", () => {
    expect(loadConfig({ TLS_CERT_FILE: "c.pem", TLS_KEY_FILE: "k.pem" }).tls).toEqual({
      certFile: "c.pem",
      keyFile: "k.pem",
      caFile: undefined,
    });
    expect(loadConfig({ TLS_CERT_FILE: "c.pem", TLS_KEY_FILE: "k.pem", TLS_CA_FILE: "ca.pem" }).tls?.caFile).toBe("ca.pem");
    expect(loadConfig({}).tls).toBeUndefined();
  });

  it("redacts the password from database URLs", () => {
    expect(redactUrl("postgres://app:s3cret@db:5432/segments")).toBe("postgres://app:***@db:5432/segments");
  });

  it("redacts secrets given as query parameters and keeps the rest", () => {
    const redacted = redactUrl("postgres://app@db:5432/segments?password=s3cret&sslpassword=k3y&sslkey=/run/k&sslmode=require");
    expect(redacted).not.toMatch(/s3cret|k3y|\/run\/k/);
    const params = new URL(redacted).searchParams;
    expect([params.get("password"), params.get("sslpassword"), params.get("sslkey"), params.get("sslmode")]).toEqual([
      "***",
      "***",
      "***",
      "require",
    ]);
  });

  it("accepts plain decimal integers", () => {
    expect(loadConfig({ GRPC_PORT: "16", HTTP_PORT: "0", MAX_IDS_PER_CALL: "0100" })).toMatchObject({
      grpcPort: 16,
      httpPort: 0,
      maxIdsPerCall: 100,
    });
  });
});
