/**
 * Streams an NDJSON or CSV file of events to a running service's LoadEvents (works with either
 * store, also PGlite, whose directory the running service holds locked).
 *
 *   npm run events:load -- events.ndjson [--format csv] [--address 127.0.0.1:50051]
 *
 * The format follows the file extension (.csv → CSV, else NDJSON) unless --format says otherwise.
 */
import { createReadStream } from "node:fs";
import { parseArgs } from "node:util";
import { createClient } from "../src/client/client.js";
import { EventFormat, SegmentService } from "../src/gen/segments/v1/segment_service_pb.js";

/** Messages stay well under the service's 2 MiB request limit. */
const CHUNK_BYTES = 1 << 20;

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      format: { type: "string" },
      address: { type: "string", default: `${process.env.GRPC_HOST ?? "127.0.0.1"}:${process.env.GRPC_PORT ?? "50051"}` },
    },
  });
  const [file] = positionals;
  if (file === undefined) throw new Error("usage: npm run events:load -- FILE [--format ndjson|csv] [--address host:port]");
  const name = values.format ?? (file.toLowerCase().endsWith(".csv") ? "csv" : "ndjson");
  if (name !== "csv" && name !== "ndjson") throw new Error("--format must be ndjson or csv");
  const format = name === "csv" ? EventFormat.CSV : EventFormat.NDJSON;
  const client = createClient(SegmentService, values.address);
  try {
    const started = performance.now();
    const messages = async function* () {
      for await (const chunk of createReadStream(file, { highWaterMark: CHUNK_BYTES })) {
        yield { format, text: chunk as Buffer };
      }
    };
    const result = await client.loadEvents(messages());
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write(
      `${result.loaded} events loaded, ${result.rejected} lines rejected in ${seconds.toFixed(1)} s (${Math.round(Number(result.loaded) / seconds)} rows/s)\n`,
    );
    for (const line of result.rejectedLines) process.stdout.write(`  line ${line.line}: ${line.reason}\n`);
  } finally {
    client.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
