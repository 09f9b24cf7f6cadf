/**
 * Certificates made by the openssl CLI for one test run, in a fresh temp dir: a CA, two server
 * certificates for localhost / 127.0.0.1 told apart by serial and CN (a renewal), a client
 * certificate, and a second CA that signed none of them (a rotated-to CA). P-256 keys, because RSA key generation would dominate the test's run time.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** A certificate and its key, as files and as PEM. */
export interface TestCertificate {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
  /** As `getPeerCertificate().serialNumber` reports it: upper-case hex. */
  serialNumber: string;
  commonName: string;
}

/** What makeTestCertificates made; remove() deletes the directory. */
export interface TestCertificates {
  dir: string;
  caFile: string;
  ca: Buffer;
  otherCaFile: string;
  server: TestCertificate;
  renewedServer: TestCertificate;
  client: TestCertificate;
  remove(): Promise<void>;
}

const KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
const SERVER_NAMES = "subjectAltName=DNS:localhost,IP:127.0.0.1\n";

/** Makes the CA and the certificates it signs in a new temp dir. */
export async function makeTestCertificates(): Promise<TestCertificates> {
  const dir = await mkdtemp(join(tmpdir(), "segments-tls-"));
  const openssl = (...args: string[]) => run("/usr/bin/openssl", args, { cwd: dir });
  const authority = (name: string, commonName: string) =>
    openssl("req", "-x509", ...KEY, "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "1", "-subj", `/CN=${commonName}`);
  await Promise.all([
    authority("ca", "segments test CA"),
    authority("other-ca", "segments test CA, other"),
    writeFile(join(dir, "server.ext"), SERVER_NAMES),
  ]);

  const issue = async (name: string, commonName: string, serial: number, extensions: string[]): Promise<TestCertificate> => {
    await openssl("req", ...KEY, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${commonName}`);
    const signing = ["-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", String(serial), "-days", "1", ...extensions];
    await openssl("x509", "-req", "-in", `${name}.csr`, "-out", `${name}.pem`, ...signing);
    const certFile = join(dir, `${name}.pem`);
    const keyFile = join(dir, `${name}.key`);
    const [cert, key] = await Promise.all([readFile(certFile), readFile(keyFile)]);
    return { certFile, keyFile, cert, key, serialNumber: serial.toString(16).toUpperCase(), commonName };
  };
  // Fixed, distinct serials: each certificate signs its own files, so they can run at once.
  const [server, renewedServer, client] = await Promise.all([
    issue("server", "segments test server", 0x5e01, ["-extfile", "server.ext"]),
    issue("renewed-server", "segments test server, renewed", 0x5e02, ["-extfile", "server.ext"]),
    issue("client", "segments test client", 0xc11e, []),
  ]);
  const caFile = join(dir, "ca.pem");
  return {
    dir,
    caFile,
    ca: await readFile(caFile),
    otherCaFile: join(dir, "other-ca.pem"),
    server,
    renewedServer,
    client,
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
