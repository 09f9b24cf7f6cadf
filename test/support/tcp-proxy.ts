/**
 * Failure injection for the database link: a TCP proxy that can freeze, so that to the service
 * the database looks hung (a stopped server, a partition) while the real Postgres stays healthy
 * for every other test.
 */

import type { AddressInfo } from "node:net";
import { connect, createServer, type Server, type Socket } from "node:net";

/** A running proxy. */
export interface TcpProxy {
  port: number;
  /** Stops forwarding in both directions; bytes that arrive meanwhile wait in the proxy. */
  freeze(): void;
  /** Forwards again, including whatever waited. */
  thaw(): void;
  close(): Promise<void>;
}

/** Forwards 127.0.0.1:<port> to `host`:`port`. */
export async function startProxy(host: string, port: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let frozen = false;
  // Bytes that arrived while frozen, in arrival order, with where they go.
  let held: [Socket, Buffer][] = [];
  const forward = (from: Socket, to: Socket) =>
    from.on("data", (chunk: Buffer) => {
      if (frozen) held.push([to, chunk]);
      else to.write(chunk);
    });
  const server: Server = createServer((client) => {
    const upstream = connect(port, host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => undefined);
    }
    forward(client, upstream);
    forward(upstream, client);
    // Either side going away takes the other with it, as a dropped connection would.
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    freeze: () => {
      frozen = true;
    },
    thaw: () => {
      frozen = false;
      for (const [to, chunk] of held) if (!to.destroyed) to.write(chunk);
      held = [];
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
