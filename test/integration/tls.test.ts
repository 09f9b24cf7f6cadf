/**
 * TLS and mTLS on the real entry point (issue 12): the typed client and the README's `buf curl`
 * TLS session work with a token and a client certificate; a client without a certificate is
 * refused on both ports; SIGHUP swaps the certificate for new connections while the process and
 * its open connections keep serving.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:tls";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENTRY, type ServiceProcess, spawnService } from "../../bench/lib/service-process.js";
import { Code, SegmentsClient, type SegmentsError } from "../../src/client/index.js";
import { Role } from "../../src/gen/segments/v1/access_service_pb.js";
import { makeTestCertificates, type TestCertificate, type TestCertificates } from "../support/certificates.js";
import { storeKind, type TestStore } from "../support/stores.js";

const run = promisify(execFile);
const ADMIN_TOKEN = randomBytes(32).toString("hex");

describe("the service over mTLS", () => {
  let certs: TestCertificates;
  let dir: string;
  let store: TestStore;
  let main: ServiceProcess;
  const files = { cert: "", key: "" };
  const clients: SegmentsClient[] = [];

  const install = async (server: TestCertificate) => {
    await copyFile(server.certFile, files.cert);
    await copyFile(server.keyFile, files.key);
  };
  const client = (withCertificate: boolean) => {
    const made = new SegmentsClient(`localhost:${main.grpcPort}`, {
      token: ADMIN_TOKEN,
      retry: false,
      tls: withCertificate ? { rootCerts: certs.ca, certChain: certs.client.cert, privateKey: certs.client.key } : { rootCerts: certs.ca },
    });
    clients.push(made);
    return made;
  };

  beforeAll(async () => {
    certs = await makeTestCertificates();
    dir = await mkdtemp(join(tmpdir(), "segments-tls-main-"));
    files.cert = join(dir, "server.pem");
    files.key = join(dir, "server-key.pem");
    await install(certs.server);
    store = await storeKind("postgres").create();
    main = await spawnService(
      {
        ...store.env,
        ADMIN_TOKEN,
        TLS_CERT_FILE: files.cert,
        TLS_KEY_FILE: files.key,
        TLS_CA_FILE: certs.caFile,
        SHUTDOWN_GRACE_MS: "500",
      },
      ENTRY.source,
    );
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await main.stop("SIGKILL");
    await store.drop();
    await certs.remove();
    await rm(dir, { recursive: true, force: true });
  });

  it("serves the typed client with a certificate and a token, and refuses one without a certificate", async () => {
    const ok = client(true);
    expect(await ok.access.whoAmI({})).toMatchObject({ authenticated: true, name: "ADMIN_TOKEN", role: Role.ADMIN });
    const refused = await client(false)
      .access.whoAmI({})
      .then(
        () => undefined,
        (e: unknown) => e as SegmentsError,
      );
    expect(refused?.code).toBe(Code.UNAVAILABLE);
  });

  it("serves /healthz over mTLS only", async () => {
    expect(await httpsStatus(main.httpPort, certs, true)).toBe(200);
    await expect(httpsStatus(main.httpPort, certs, false)).rejects.toThrow();
  });

  it("runs the README's buf curl TLS session", async () => {
    const readme = await readFile("README.md", "utf8");
    const block = /<!-- tls-session:start -->\n```sh\n([\s\S]*?)```\n<!-- tls-session:end -->/.exec(readme)?.[1];
    expect(block, "README has a TLS session block").toBeDefined();
    const script = `set -euo pipefail\n${(block ?? "")
      .replaceAll("localhost:50051", `localhost:${main.grpcPort}`)
      .replaceAll("ca.pem", certs.caFile)
      .replaceAll("client.pem", certs.client.certFile)
      .replaceAll("client-key.pem", certs.client.keyFile)}`;
    const { stdout } = await run("bash", ["-c", script], { env: { ...process.env, SEGMENTS_TOKEN: ADMIN_TOKEN } });
    expect(stdout).toContain('"name": "ADMIN_TOKEN"');
    expect(stdout).toContain('"role": "ROLE_ADMIN"');
  });

  it("shows new connections the renewed certificate after SIGHUP, and keeps serving open ones", async () => {
    const open = client(true);
    await open.access.whoAmI({});
    expect(await peerSerial(main.grpcPort, certs)).toBe(certs.server.serialNumber);
    await install(certs.renewedServer);
    main.child.kill("SIGHUP");
    await expect.poll(() => main.logs.some((l) => l.msg === "SIGHUP: TLS certificates reloaded")).toBe(true);
    expect(await peerSerial(main.grpcPort, certs)).toBe(certs.renewedServer.serialNumber);
    expect(await peerSerial(main.httpPort, certs, "http/1.1")).toBe(certs.renewedServer.serialNumber);
    expect((await open.access.whoAmI({})).name).toBe("ADMIN_TOKEN");
    expect((await client(true).access.whoAmI({})).name).toBe("ADMIN_TOKEN");
  });

  it("keeps the old certificate when the new files are bad, and says so", async () => {
    await rm(files.key);
    main.child.kill("SIGHUP");
    await expect.poll(() => main.logs.some((l) => l.msg?.toString().startsWith("SIGHUP: cannot reload"))).toBe(true);
    expect(await peerSerial(main.grpcPort, certs)).toBe(certs.renewedServer.serialNumber);
    expect((await client(true).access.whoAmI({})).name).toBe("ADMIN_TOKEN");
  });
});

/** The serial number of the certificate a new TLS connection to `port` is shown. */
function peerSerial(port: number, certs: TestCertificates, protocol = "h2"): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      {
        host: "127.0.0.1",
        port,
        servername: "localhost",
        ca: certs.ca,
        cert: certs.client.cert,
        key: certs.client.key,
        ALPNProtocols: [protocol],
      },
      () => {
        resolve(socket.getPeerCertificate().serialNumber);
        socket.destroy();
      },
    );
    socket.once("error", reject);
  });
}

/** GET /healthz over HTTPS, with or without the client certificate. */
function httpsStatus(port: number, certs: TestCertificates, withCertificate: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path: "/healthz",
        servername: "localhost",
        ca: certs.ca,
        ...(withCertificate ? { cert: certs.client.cert, key: certs.client.key } : {}),
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.once("error", reject);
    req.end();
  });
}
