/**
 * TLS for the gRPC port and the HTTP side port, from PEM files that reload() re-reads (on SIGHUP)
 * so a renewed certificate reaches new connections without a restart; open connections keep the
 * certificate they were made with. A CA file turns on mTLS: clients must present a certificate
 * it signed.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import * as grpc from "@grpc/grpc-js";

type CertificateProvider = grpc.experimental.CertificateProvider;
type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

/** Where the PEM files are; a caFile means client certificates are required (mTLS). */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  caFile?: string | undefined;
}

/** Options for `https.createServer` / `server.setSecureContext`, from the current files. */
export interface TlsServerOptions {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  requestCert: boolean;
  rejectUnauthorized: boolean;
}

interface Pem {
  cert: Buffer;
  key: Buffer;
  ca: Buffer | undefined;
}

// The variables config.ts reads the paths from, so an error says what to fix.
const CERT = "TLS_CERT_FILE";
const KEY = "TLS_KEY_FILE";
const CA = "TLS_CA_FILE";

/** The server's certificate, key and client CA, read from files and re-read by reload(). */
export class CertificateFiles implements CertificateProvider {
  /** Whether clients must present a certificate signed by the CA file. */
  readonly requiresClientCertificate: boolean;
  private pem: Pem;
  private readonly identityListeners = new Set<IdentityListener>();
  private readonly caListeners = new Set<CaListener>();
  private readonly reloadListeners = new Set<() => void>();

  constructor(private readonly files: TlsFiles) {
    this.requiresClientCertificate = files.caFile !== undefined;
    this.pem = load(files);
  }

  /** Re-reads and checks the files; on an error throws and keeps the certificates it had. */
  reload(): void {
    this.pem = load(this.files);
    // Synchronously, so a connection accepted after reload() returns gets the new certificate.
    for (const listener of this.identityListeners) listener(this.identityUpdate());
    for (const listener of this.caListeners) listener(this.caUpdate());
    for (const listener of this.reloadListeners) listener();
  }

  /** Calls `listener` after each successful reload; returns a function that stops that. */
  onReload(listener: () => void): () => void {
    this.reloadListeners.add(listener);
    return () => this.reloadListeners.delete(listener);
  }

  /** Options for Node's https/tls server, from the files as last loaded. */
  secureContextOptions(): TlsServerOptions {
    const { cert, key, ca } = this.pem;
    // rejectUnauthorized only matters once requestCert is on; true is the safe value either way.
    return { cert, key, ...(ca === undefined ? {} : { ca }), requestCert: this.requiresClientCertificate, rejectUnauthorized: true };
  }

  /** grpc-js: start sending identity updates to `listener`. */
  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    // grpc-js registers its own watcher only after adding this listener, so an update sent
    // synchronously here would be lost and the port would drop every connection.
    process.nextTick(() => {
      if (this.identityListeners.has(listener)) listener(this.identityUpdate());
    });
  }

  /** grpc-js: stop sending identity updates to `listener`. */
  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }

  /** grpc-js: start sending CA updates to `listener`. */
  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    process.nextTick(() => {
      if (this.caListeners.has(listener)) listener(this.caUpdate());
    });
  }

  /** grpc-js: stop sending CA updates to `listener`. */
  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  private identityUpdate(): grpc.experimental.IdentityCertificateUpdate {
    return { certificate: this.pem.cert, privateKey: this.pem.key };
  }

  private caUpdate(): grpc.experimental.CaCertificateUpdate | null {
    return this.pem.ca === undefined ? null : { caCertificate: this.pem.ca };
  }
}

/** Server credentials that follow `files` across reloads, requiring client certificates given a CA. */
export function grpcServerCredentials(files: CertificateFiles): grpc.ServerCredentials {
  const mutual = files.requiresClientCertificate;
  // The .d.ts names the parameters (ca, identity) but the code passes them on as (identity, ca):
  // the first is the identity provider, the second the CA provider or null (then no client
  // certificate is requested at all).
  return grpc.experimental.createCertificateProviderServerCredentials(files, mutual ? files : null, mutual);
}

function load(files: TlsFiles): Pem {
  const cert = read(CERT, files.certFile);
  const key = read(KEY, files.keyFile);
  const ca = files.caFile === undefined ? undefined : read(CA, files.caFile);
  // Checked one by one because createSecureContext's errors do not say which file is wrong,
  // and it silently accepts a CA file with no certificate in it.
  const certificate = attempt(`${CERT} ${files.certFile}: no PEM certificate`, () => new X509Certificate(cert));
  const privateKey = attempt(`${KEY} ${files.keyFile}: no PEM private key`, () => createPrivateKey(key));
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new Error(`${KEY} ${files.keyFile} does not match ${CERT} ${files.certFile}`);
  }
  if (ca !== undefined) attempt(`${CA} ${files.caFile}: no PEM certificate`, () => new X509Certificate(ca));
  const all = ca === undefined ? `${CERT}, ${KEY}` : `${CERT}, ${KEY}, ${CA}`;
  attempt(`${all}: not accepted by TLS`, () => createSecureContext({ cert, key, ca }));
  return { cert, key, ca };
}

function read(variable: string, path: string): Buffer {
  return attempt(`${variable} ${path}: cannot read`, () => readFileSync(path));
}

/** `make()`, or an error saying `what` went wrong and why. */
function attempt<T>(what: string, make: () => T): T {
  try {
    return make();
  } catch (e: unknown) {
    throw new Error(`${what} (${e instanceof Error ? e.message : String(e)})`, { cause: e });
  }
}
