/**
 * The container health check: exit 0 when /healthz on this machine's HTTP_PORT answers 200, 1
 * otherwise (within 2 s). A file of its own so the image needs no curl.
 */
import { get } from "node:http";

const port = Number(process.env.HTTP_PORT ?? "9464");
const request = get({ host: "127.0.0.1", port, path: "/healthz", timeout: 2_000 }, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
request.on("timeout", () => request.destroy(new Error("timed out")));
request.on("error", () => process.exit(1));
