/**
 * TLS and mTLS from PEM files on a real grpc-js server and a real https server, with certificates
 * made by openssl for this run; reload() gives new connections the renewed certificate while open
 * ones keep serving, and a broken file changes nothing.
 */
import { copyFile, mkdtemp, writeFile } from "node:fs/promises";
import { createServer, request } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { connect, type PeerCertificate } from "node:tls";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  Health,
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../../src/gen/grpc/health/v1/health_pb.js";
import { CertificateFiles, grpcServerCredentials, type TlsFiles } from "../../src/tls/certificates.js";
import { makeTestCertificates, type TestCertificate, type TestCertificates } from "../support/certificates.js";
import { startFakeServer } from "../support/fake-server.js";

let certs: TestCertificates;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  certs = await makeTestCertificates();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(() => certs.remove());

type LiveFiles = TlsFiles & { caFile: string };

/** Files in a directory of their own, holding `server` and the CA, which a test may overwrite. */
async function liveFiles(server: TestCertificate): Promise<LiveFiles> {
  const dir = await mkdtemp(join(certs.dir, "live-"));
  const files = { certFile: join(dir, "server.pem"), keyFile: join(dir, "server.key"), caFile: join(dir, "ca.pem") };
  await install(server, files);
  await copyFile(certs.caFile, files.caFile);
  return files;
}

/** `files` without the CA file: TLS without client certificates. */
const serverOnly = ({ certFile, keyFile }: LiveFiles): TlsFiles => ({ certFile, keyFile });

/** Overwrites the certificate and key files with `server`'s, as a renewal would. */
async function install(server: TestCertificate, files: TlsFiles): Promise<void> {
  await copyFile(server.certFile, files.certFile);
  await copyFile(server.keyFile, files.keyFile);
}

/** The certificate a new TLS connection to `port` is shown, verified against the test CA for localhost. */
function peerCertificate(port: number, protocol: "h2" | "http/1.1"): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, servername: "localhost", ca: certs.ca, ALPNProtocols: [protocol] }, () => {
      resolve(socket.getPeerCertificate());
      socket.destroy();
    });
    socket.once("error", reject);
  });
}

/** A gRPC server answering Health.Check with SERVING, on `files`' credentials; resolves to its address. */
async function serveGrpc(files: CertificateFiles): Promise<string> {
  const check = (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback(null, { status: ServingStatus.SERVING });
  const server = await startFakeServer([[Health, { check }]], grpcServerCredentials(files));
  cleanups.push(() => server.stop());
  return server.address;
}

/** A client of `address`, closed after the test. */
function grpcClient(address: string, credentials: grpc.ChannelCredentials): grpc.Client {
  // The target is an IP address, which grpc-js would otherwise send as the TLS server name (Node
  // warns: RFC 6066 forbids it); the certificate names localhost too.
  const client = new grpc.Client(address, credentials, { "grpc.ssl_target_name_override": "localhost" });
  cleanups.push(() => client.close());
  return client;
}

/** Health.Check over `client`'s channel (its open connection, if it has one). */
function healthCheck(client: grpc.Client): Promise<ServingStatus | undefined> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      (message: object) => Buffer.from(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, message))),
      (bytes: Buffer) => fromBinary(HealthCheckResponseSchema, bytes),
      {},
      new grpc.Metadata(),
      { deadline: Date.now() + 10_000 },
      (error, response) => (error ? reject(error) : resolve(response?.status)),
    ),
  );
}

const trusting = () => grpc.credentials.createSsl(certs.ca);
const withClientCertificate = () => grpc.credentials.createSsl(certs.ca, certs.client.key, certs.client.cert);
const unavailable = { code: grpc.status.UNAVAILABLE };

describe("CertificateFiles", () => {
  const broken: [string, (files: LiveFiles) => Promise<unknown>, RegExp][] = [
    [
      "an unreadable certificate path",
      async (f) => Object.assign(f, { certFile: `${f.certFile}.gone` }),
      /^TLS_CERT_FILE \S+: cannot read/,
    ],
    ["an unreadable key path", async (f) => Object.assign(f, { keyFile: `${f.keyFile}.gone` }), /^TLS_KEY_FILE \S+: cannot read/],
    ["an unreadable CA path", async (f) => Object.assign(f, { caFile: `${f.caFile}.gone` }), /^TLS_CA_FILE \S+: cannot read/],
    ["a certificate file with no certificate", (f) => writeFile(f.certFile, "not PEM"), /^TLS_CERT_FILE \S+: no PEM certificate/],
    ["a key file holding the certificate", (f) => copyFile(f.certFile, f.keyFile), /^TLS_KEY_FILE \S+: no PEM private key/],
    ["the key of another certificate", (f) => copyFile(certs.client.keyFile, f.keyFile), /^TLS_KEY_FILE \S+ does not match TLS_CERT_FILE/],
    ["a CA file with no certificate", (f) => writeFile(f.caFile, "not PEM"), /^TLS_CA_FILE \S+: no PEM certificate/],
  ];

  it.each(broken)("refuses to start from %s, naming the variable", async (_name, breakFiles, message) => {
    const files = await liveFiles(certs.server);
    expect(() => new CertificateFiles(files)).not.toThrow();
    await breakFiles(files);
    expect(() => new CertificateFiles(files)).toThrow(message);
  });

  it("requires client certificates exactly when given a CA file", async () => {
    const plain = new CertificateFiles(serverOnly(await liveFiles(certs.server)));
    const mutual = new CertificateFiles(await liveFiles(certs.server));
    expect(plain.requiresClientCertificate).toBe(false);
    expect(plain.secureContextOptions()).toEqual({
      cert: certs.server.cert,
      key: certs.server.key,
      requestCert: false,
      rejectUnauthorized: true,
    });
    expect(mutual.requiresClientCertificate).toBe(true);
    expect(mutual.secureContextOptions()).toMatchObject({ ca: certs.ca, requestCert: true, rejectUnauthorized: true });
  });

  it("calls onReload listeners after a successful reload only, until they unsubscribe", async () => {
    const paths = await liveFiles(certs.server);
    const files = new CertificateFiles(serverOnly(paths));
    const seen: string[] = [];
    const stop = files.onReload(() => seen.push(files.secureContextOptions().cert.toString()));
    await install(certs.renewedServer, paths);
    files.reload();
    await writeFile(paths.keyFile, "not PEM");
    expect(() => files.reload()).toThrow(/TLS_KEY_FILE/);
    expect(files.secureContextOptions().cert).toEqual(certs.renewedServer.cert);
    stop();
    await install(certs.server, paths);
    files.reload();
    expect(seen).toEqual([certs.renewedServer.cert.toString()]);
  });
});

describe("gRPC port", () => {
  it("serves TLS to a client trusting the CA, and refuses plaintext", async () => {
    const address = await serveGrpc(new CertificateFiles(serverOnly(await liveFiles(certs.server))));
    expect(await healthCheck(grpcClient(address, trusting()))).toBe(ServingStatus.SERVING);
    await expect(healthCheck(grpcClient(address, grpc.credentials.createInsecure()))).rejects.toMatchObject(unavailable);
  });

  it("with a CA file, refuses a client without a certificate and serves one with a certificate the CA signed", async () => {
    const paths = await liveFiles(certs.server);
    const files = new CertificateFiles(paths);
    const address = await serveGrpc(files);
    await expect(healthCheck(grpcClient(address, trusting()))).rejects.toMatchObject(unavailable);
    expect(await healthCheck(grpcClient(address, withClientCertificate()))).toBe(ServingStatus.SERVING);

    // The CA goes through its own listener on reload; client certificates stay required.
    await install(certs.renewedServer, paths);
    files.reload();
    await expect(healthCheck(grpcClient(address, trusting()))).rejects.toMatchObject(unavailable);
    expect(await healthCheck(grpcClient(address, withClientCertificate()))).toBe(ServingStatus.SERVING);
  });

  it("after reload() with another CA file, refuses new connections from clients the old CA signed", async () => {
    const paths = await liveFiles(certs.server);
    const files = new CertificateFiles(paths);
    const address = await serveGrpc(files);
    const open = grpcClient(address, withClientCertificate());
    expect(await healthCheck(open)).toBe(ServingStatus.SERVING);

    await copyFile(certs.otherCaFile, paths.caFile);
    files.reload();
    await expect(healthCheck(grpcClient(address, withClientCertificate()))).rejects.toMatchObject(unavailable);
    expect(await healthCheck(open)).toBe(ServingStatus.SERVING);
  });

  it("shows new connections the renewed certificate after reload(), and the open connection keeps serving", async () => {
    const paths = await liveFiles(certs.server);
    const files = new CertificateFiles(serverOnly(paths));
    const address = await serveGrpc(files);
    const port = Number(address.split(":")[1]);
    const open = grpcClient(address, trusting());
    expect(await healthCheck(open)).toBe(ServingStatus.SERVING);
    expect((await peerCertificate(port, "h2")).serialNumber).toBe(certs.server.serialNumber);

    await install(certs.renewedServer, paths);
    // Only reload() reads the files.
    expect((await peerCertificate(port, "h2")).serialNumber).toBe(certs.server.serialNumber);
    files.reload();
    const renewed = await peerCertificate(port, "h2");
    expect(renewed.serialNumber).toBe(certs.renewedServer.serialNumber);
    expect(renewed.subject.CN).toBe(certs.renewedServer.commonName);
    expect(await healthCheck(grpcClient(address, trusting()))).toBe(ServingStatus.SERVING);
    expect(await healthCheck(open)).toBe(ServingStatus.SERVING);
  });

  it("keeps serving the old certificate when a reload finds a broken file", async () => {
    const paths = await liveFiles(certs.server);
    const files = new CertificateFiles(serverOnly(paths));
    const address = await serveGrpc(files);
    const port = Number(address.split(":")[1]);

    await writeFile(paths.keyFile, "-----BEGIN PRIVATE KEY-----\ntruncated");
    expect(() => files.reload()).toThrow(/^TLS_KEY_FILE \S+: no PEM private key/);
    // Half-renewed: the new certificate is in place but the key is still the old one.
    await install(certs.server, paths);
    await copyFile(certs.renewedServer.certFile, paths.certFile);
    expect(() => files.reload()).toThrow(/^TLS_KEY_FILE \S+ does not match TLS_CERT_FILE/);

    expect((await peerCertificate(port, "h2")).serialNumber).toBe(certs.server.serialNumber);
    expect(await healthCheck(grpcClient(address, trusting()))).toBe(ServingStatus.SERVING);

    await install(certs.renewedServer, paths);
    files.reload();
    expect((await peerCertificate(port, "h2")).serialNumber).toBe(certs.renewedServer.serialNumber);
  });
});

describe("https side port", () => {
  /** An https server on `files`, its secure context replaced after each reload; resolves to its port. */
  async function serveHttps(files: CertificateFiles): Promise<number> {
    const server = createServer(files.secureContextOptions(), (_req, res) => res.end("ok\n"));
    const stop = files.onReload(() => server.setSecureContext(files.secureContextOptions()));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => {
      stop();
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    });
    return (server.address() as AddressInfo).port;
  }

  /** GET / over a new connection, verifying the server as 127.0.0.1 (its IP SAN) against the test CA. */
  function get(port: number, client?: TestCertificate): Promise<number | undefined> {
    const identity = client === undefined ? {} : { cert: client.cert, key: client.key };
    return new Promise((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, ca: certs.ca, agent: false, ...identity }, (res) => {
        res.resume().on("end", () => resolve(res.statusCode));
      });
      req.on("error", reject).end();
    });
  }

  it("shows new connections the renewed certificate after reload()", async () => {
    const paths = await liveFiles(certs.server);
    const files = new CertificateFiles(serverOnly(paths));
    const port = await serveHttps(files);
    expect(await get(port)).toBe(200);
    expect((await peerCertificate(port, "http/1.1")).serialNumber).toBe(certs.server.serialNumber);

    await install(certs.renewedServer, paths);
    files.reload();
    expect((await peerCertificate(port, "http/1.1")).serialNumber).toBe(certs.renewedServer.serialNumber);
    expect(await get(port)).toBe(200);
  });

  it("with a CA file, requires a client certificate the CA signed", async () => {
    const port = await serveHttps(new CertificateFiles(await liveFiles(certs.server)));
    await expect(get(port)).rejects.toThrow();
    expect(await get(port, certs.client)).toBe(200);
  });
});
