/** Member and audience commands: add, remove, import (with progress), export (with progress), check, count. */
import { createReadStream, createWriteStream, statSync } from "node:fs";
import type { MessageShape } from "@bufbuild/protobuf";
import { type Command, Option } from "commander";
import { parse } from "csv-parse";
import {
  AddMembersResponseSchema,
  CheckMembershipResponseSchema,
  CountAudienceResponseSchema,
  ImportMembersResponseSchema,
  ImportMode,
  RemoveMembersResponseSchema,
} from "../client/index.js";
import { type Session, table, withSession } from "./connection.js";
import { progressBar } from "./progress.js";

const MODES: Record<string, ImportMode> = { add: ImportMode.ADD, remove: ImportMode.REMOVE, replace: ImportMode.REPLACE };
/** Ids per ImportMembers message from a CSV file (the server takes up to 100,000). */
const CSV_BATCH = 10_000;

/** Adds the member and audience commands to `root`. */
export function memberCommands(root: Command): void {
  root
    .command("add")
    .description("add users to a STATIC segment")
    .argument("<segment-id>")
    .argument("<user-id...>")
    .action((segmentId: string, userIds: string[], _options: unknown, command: Command) =>
      withSession(command, async ({ client, printMessage }) => {
        const done = await client.segments.addMembers({ segmentId, userIds });
        printMessage(
          AddMembersResponseSchema,
          done,
          (r) => `added ${r.added}, unchanged ${r.unchanged}; version ${r.version}, ${r.memberCount} members`,
        );
      }),
    );
  root
    .command("remove")
    .description("remove users from a STATIC segment")
    .argument("<segment-id>")
    .argument("<user-id...>")
    .action((segmentId: string, userIds: string[], _options: unknown, command: Command) =>
      withSession(command, async ({ client, printMessage }) => {
        const done = await client.segments.removeMembers({ segmentId, userIds });
        printMessage(
          RemoveMembersResponseSchema,
          done,
          (r) => `removed ${r.removed}, unchanged ${r.unchanged}; version ${r.version}, ${r.memberCount} members`,
        );
      }),
    );
  root
    .command("import")
    .description("import user ids into a STATIC segment as one version: one id per line, or a CSV column")
    .argument("<segment-id>")
    .argument("[file]", "the file; stdin when absent or -")
    .addOption(
      new Option("--mode <mode>", "add them, remove them, or make them the whole membership").choices(Object.keys(MODES)).default("add"),
    )
    .option("--csv-column <name>", "read a CSV file with a header row and take this column")
    .option("--no-progress", "no progress bar on stderr")
    .action(
      (segmentId: string, file: string | undefined, options: { mode: string; csvColumn?: string; progress: boolean }, command: Command) =>
        withSession(command, (session) => importFile(session, segmentId, file, options)),
    );
  root
    .command("export")
    .description("write every user in the audience (include − exclude), one id per line")
    .requiredOption("--include <segment-ids>", "comma-separated segments whose users are in")
    .option("--exclude <segment-ids>", "comma-separated segments whose users are out", "")
    .option("--output <file>", "where to write (default stdout)")
    .option("--no-progress", "no progress bar on stderr")
    .action((options: { include: string; exclude: string; output?: string; progress: boolean }, command: Command) =>
      withSession(command, async ({ client, print }) => {
        const audience = { includeSegmentIds: list(options.include), excludeSegmentIds: list(options.exclude) };
        const { count } = await client.membership.countAudience(audience);
        const bar = options.progress ? progressBar("export", Number(count), "ids") : undefined;
        const out: NodeJS.WritableStream = options.output === undefined ? process.stdout : createWriteStream(options.output);
        let written = 0;
        try {
          for await (const batch of client.membership.streamAudience({ ...audience, batchSize: 10_000 })) {
            if (batch.userIds.length === 0) continue;
            if (!out.write(`${batch.userIds.join("\n")}\n`)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
            written += batch.userIds.length;
            bar?.update(written);
          }
        } finally {
          bar?.stop();
        }
        if (out !== process.stdout) await new Promise<void>((resolve) => out.end(() => resolve()));
        if (options.output !== undefined)
          print({ exported: written, output: options.output }, (v) => `exported ${v.exported} ids to ${v.output}`);
      }),
    );
  root
    .command("check")
    .description("is a user in each of these segments?")
    .argument("<user-id>")
    .argument("<segment-id...>")
    .action((userId: string, segmentIds: string[], _options: unknown, command: Command) =>
      withSession(command, async ({ client, printMessage }) => {
        const answer = await client.membership.checkMembership({ userId, segmentIds });
        printMessage(CheckMembershipResponseSchema, answer, (r) =>
          table(
            ["SEGMENT", "MEMBER", "VERSION"],
            r.results.map((m) => [m.segmentId, m.member ? "yes" : "no", m.version.toString()]),
          ),
        );
      }),
    );
  root
    .command("count")
    .description("how many users are in the audience (include − exclude)")
    .requiredOption("--include <segment-ids>", "comma-separated segments whose users are in")
    .option("--exclude <segment-ids>", "comma-separated segments whose users are out", "")
    .action((options: { include: string; exclude: string }, command: Command) =>
      withSession(command, async ({ client, printMessage }) => {
        const counted = await client.membership.countAudience({
          includeSegmentIds: list(options.include),
          excludeSegmentIds: list(options.exclude),
        });
        printMessage(CountAudienceResponseSchema, counted, (r) => r.count.toString());
      }),
    );
}

/** One ImportMembers stream from `file` (stdin when absent or -), with a progress bar. */
async function importFile(
  { client, printMessage }: Session,
  segmentId: string,
  file: string | undefined,
  options: { mode: string; csvColumn?: string; progress: boolean },
): Promise<void> {
  const path = file === undefined || file === "-" ? undefined : file;
  const bar = options.progress ? progressBar("import", path === undefined ? undefined : statSync(path).size, "bytes") : undefined;
  const first = { segmentId, mode: MODES[options.mode] ?? ImportMode.UNSPECIFIED };
  const source = path === undefined ? process.stdin : createReadStream(path, { highWaterMark: 1 << 20 });
  // A failure reading the input cancels the call: report that failure, not the cancellation.
  let readFailure: unknown;
  const messages = async function* () {
    try {
      yield* options.csvColumn === undefined ? textMessages(source, first, bar) : csvMessages(source, options.csvColumn, first, bar);
    } catch (error: unknown) {
      readFailure = error;
      throw error;
    }
  };
  let done: MessageShape<typeof ImportMembersResponseSchema>;
  try {
    done = await client.segments.importMembers(messages());
  } catch (error: unknown) {
    throw readFailure ?? error;
  } finally {
    bar?.stop();
  }
  printMessage(ImportMembersResponseSchema, done, (r) =>
    [
      `added ${r.added}, removed ${r.removed}, unchanged ${r.unchanged}, invalid ${r.invalid}; version ${r.version}, ${r.memberCount} members`,
      ...r.invalidLines.map((l) => `  ${options.csvColumn === undefined ? "line" : "entry"} ${l.line}: ${l.reason}`),
    ].join("\n"),
  );
}

function list(value: string): string[] {
  return value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

type Progress = ReturnType<typeof progressBar>;
interface First {
  segmentId: string;
  mode: ImportMode;
}

/** The file as raw text chunks (the server splits lines, counts and reports bad ones by line number). */
async function* textMessages(source: NodeJS.ReadableStream, first: First, bar: Progress | undefined) {
  let sent = 0;
  let lines = 0;
  let head: First | undefined = first;
  for await (const chunk of source as AsyncIterable<Buffer>) {
    for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) lines++;
    sent += chunk.length;
    bar?.update(sent, { ids: lines });
    yield { ...head, text: chunk };
    head = undefined;
  }
  if (head !== undefined) yield head;
}

/** One column of a CSV file with a header row, sent as id lists. */
async function* csvMessages(source: NodeJS.ReadableStream, column: string, first: First, bar: Progress | undefined) {
  let head: First | undefined = first;
  let batch: string[] = [];
  let ids = 0;
  const parser = source.pipe(parse({ columns: true, skip_empty_lines: true, trim: true, relax_column_count: true }));
  for await (const record of parser as AsyncIterable<Record<string, string | undefined>>) {
    if (ids === 0 && !(column in record))
      throw new Error(`the CSV has no column ${JSON.stringify(column)}; it has ${Object.keys(record).join(", ")}`);
    batch.push(record[column] ?? "");
    ids++;
    if (batch.length === CSV_BATCH) {
      bar?.update(parser.info.bytes, { ids });
      yield { ...head, userIds: batch };
      head = undefined;
      batch = [];
    }
  }
  bar?.update(parser.info.bytes, { ids });
  if (batch.length > 0 || head !== undefined) yield { ...head, userIds: batch };
}
