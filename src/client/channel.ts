/**
 * The channel's credentials and options: TLS (system roots, a private CA, mTLS) or plaintext,
 * keepalive pings, message size limits.
 */
import * as grpc from "@grpc/grpc-js";

/** Transport security. PEM contents, not file paths. */
export type TlsOptions =
  | {
      /** Plaintext. The default for loopback addresses only. */
      insecure: true;
    }
  | {
      insecure?: false;
      /** CA certificates to trust instead of the system's. */
      rootCerts?: Buffer | string;
      /** Client certificate chain for mTLS; needs `privateKey`. */
      certChain?: Buffer | string;
      /** Client private key for mTLS; needs `certChain`. */
      privateKey?: Buffer | string;
      /** Name to verify the server certificate against, when it differs from the address's host. */
      serverName?: string;
    };

/** HTTP/2 keepalive pings: a connection that does not answer one within `timeoutMs` is dropped and its calls fail UNAVAILABLE. */
export interface KeepaliveOptions {
  /** Interval between pings; the service itself pings every 60 s. */
  timeMs: number;
  /** Drop the connection when a ping is not answered within this. */
  timeoutMs: number;
  /** Ping also while no call is open, so a dead idle connection is found before the next call waits on it. */
  withoutCalls: boolean;
}

export const DEFAULT_KEEPALIVE: Readonly<KeepaliveOptions> = { timeMs: 60_000, timeoutMs: 20_000, withoutCalls: true };

/** Credentials and channel options for `address`. */
export function channelSetup(
  address: string,
  tls: TlsOptions | undefined,
  keepalive: KeepaliveOptions,
  extra: grpc.ChannelOptions,
): { credentials: grpc.ChannelCredentials; options: grpc.ChannelOptions } {
  const options: grpc.ChannelOptions = {
    "grpc.max_receive_message_length": -1,
    "grpc.max_send_message_length": -1,
    "grpc.keepalive_time_ms": keepalive.timeMs,
    "grpc.keepalive_timeout_ms": keepalive.timeoutMs,
    "grpc.keepalive_permit_without_calls": keepalive.withoutCalls ? 1 : 0,
  };
  const security = tls ?? (isLoopback(address) ? { insecure: true } : {});
  if (security.insecure === true) return { credentials: grpc.credentials.createInsecure(), options: { ...options, ...extra } };
  const { rootCerts, certChain, privateKey, serverName } = security;
  if ((certChain === undefined) !== (privateKey === undefined)) {
    throw new TypeError("tls.certChain and tls.privateKey go together: give both for mTLS, or neither");
  }
  if (serverName !== undefined) {
    options["grpc.ssl_target_name_override"] = serverName;
    options["grpc.default_authority"] = serverName;
  }
  const credentials = grpc.credentials.createSsl(pem(rootCerts), pem(privateKey), pem(certChain));
  return { credentials, options: { ...options, ...extra } };
}

function pem(value: Buffer | string | undefined): Buffer | null {
  if (value === undefined) return null;
  return typeof value === "string" ? Buffer.from(value) : value;
}

/** Whether `address` (host:port, [v6]:port, a dns:/ipv4:/ipv6:/unix: target) stays on this machine. */
export function isLoopback(address: string): boolean {
  if (address.startsWith("unix:")) return true;
  const target = address.replace(/^(dns|ipv4|ipv6):(\/\/[^/]*\/)?/, "");
  const host = target.startsWith("[")
    ? target.slice(1, target.indexOf("]"))
    : target.split(":").length === 2
      ? target.split(":")[0]
      : target;
  return host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host ?? "");
}
