/**
 * The HTTP side port: `/healthz` (liveness: the server is serving), `/readyz` (readiness: state
 * loaded and the store answering) and `/metrics` in Prometheus text format. /healthz and /metrics
 * read memory only, so they answer even when the database is down; /readyz asks the store.
 */
import { createServer, type RequestListener, type Server } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { HealthState } from "../grpc/health.js";
import type { CertificateFiles } from "../tls/certificates.js";

/** What the endpoints report on. */
export interface HttpServerDeps {
  health: HealthState;
  metrics: Registry;
  /** Whether the store answers (for /readyz); rejects or resolves false when it does not. */
  storeReachable: () => Promise<boolean>;
}

/**
 * Starts the HTTP server, over TLS when `certificates` are given (new connections get reloaded
 * ones); resolves to it and its bound port.
 */
export async function startHttpServer(
  deps: HttpServerDeps,
  host: string,
  port: number,
  certificates?: CertificateFiles,
): Promise<{ server: Server; port: number }> {
  const handler: RequestListener = (req, res) => {
    if (req.method === "GET" && req.url === "/healthz") {
      const serving = deps.health.isServing();
      res.writeHead(serving ? 200 : 503, { "content-type": "text/plain" }).end(serving ? "ok\n" : "not serving\n");
    } else if (req.method === "GET" && req.url === "/readyz") {
      void ready(deps).then((reason) =>
        res
          .writeHead(reason === undefined ? 200 : 503, { "content-type": "text/plain" })
          .end(reason === undefined ? "ready\n" : `not ready: ${reason}\n`),
      );
    } else if (req.method === "GET" && req.url === "/metrics") {
      deps.metrics.metrics().then(
        (text) => res.writeHead(200, { "content-type": deps.metrics.contentType }).end(text),
        () => res.writeHead(500, { "content-type": "text/plain" }).end("metrics failed\n"),
      );
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found; try /healthz, /readyz or /metrics\n");
    }
  };
  let server: Server;
  if (certificates === undefined) server = createServer(handler);
  else {
    const tls = createTlsServer(certificates.secureContextOptions(), handler);
    certificates.onReload(() => tls.setSecureContext(certificates.secureContextOptions()));
    server = tls;
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}

/** Why the service is not ready to take traffic (undefined: it is): state not loaded, or the store unreachable. */
async function ready(deps: HttpServerDeps): Promise<string | undefined> {
  if (!deps.health.isServing()) return "state loading or shutting down";
  const reachable = await deps.storeReachable().catch(() => false);
  return reachable ? undefined : "the store does not answer";
}
