/** The client and output settings every command shares, from the root command's options. */
import { readFileSync } from "node:fs";
import { type DescMessage, type MessageShape, toJson } from "@bufbuild/protobuf";
import type { Command } from "commander";
import { SegmentsClient, type TlsOptions } from "../client/index.js";

/** The root command's options, as commander parsed them. */
interface GlobalOptions {
  address: string;
  token?: string;
  ca?: string;
  cert?: string;
  key?: string;
  json?: boolean;
}

/** What a command runs with. */
export interface Session {
  client: SegmentsClient;
  json: boolean;
  /** Prints `value` as JSON (with --json) or as `human` renders it. */
  print<T>(value: T, human: (value: T) => string): void;
  /** Prints a response message as its canonical proto JSON (with --json) or as `human` renders it. */
  printMessage<D extends DescMessage>(schema: D, message: MessageShape<D>, human: (message: MessageShape<D>) => string): void;
}

/** Runs `fn` with a client connected as the root command's options say, closing it after. */
export async function withSession(command: Command, fn: (session: Session) => Promise<void>): Promise<void> {
  const options = command.optsWithGlobals<GlobalOptions>();
  const token = options.token ?? process.env.SEGMENTS_TOKEN;
  const client = new SegmentsClient(options.address, {
    ...(token === undefined || token === "" ? {} : { token }),
    ...tls(options),
  });
  const json = options.json === true;
  const print = <T>(value: T, human: (value: T) => string) => {
    process.stdout.write(
      json ? `${JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 2)}\n` : `${human(value)}\n`,
    );
  };
  const printMessage = <D extends DescMessage>(schema: D, message: MessageShape<D>, human: (message: MessageShape<D>) => string) =>
    process.stdout.write(json ? `${JSON.stringify(toJson(schema, message), null, 2)}\n` : `${human(message)}\n`);
  try {
    await fn({ client, json, print, printMessage });
  } finally {
    client.close();
  }
}

function tls(options: GlobalOptions): { tls?: TlsOptions } {
  if (options.ca === undefined && options.cert === undefined) return {};
  const read = (file: string | undefined) => (file === undefined ? undefined : readFileSync(file));
  return { tls: { rootCerts: read(options.ca), certChain: read(options.cert), privateKey: read(options.key) } as TlsOptions };
}

/** A plain-text table: a header row, then one row per item, columns padded to fit. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}
