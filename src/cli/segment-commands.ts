/** Segment commands: create, list, get, update, the lifecycle, history, diff, rollback, evaluations. */
import { create, fromJson } from "@bufbuild/protobuf";
import { type Command, Option } from "commander";
import {
  DiffMembershipResponseSchema,
  EvaluateSegmentResponseSchema,
  FilterSchema,
  GetSegmentResponseSchema,
  ListEvaluationsResponseSchema,
  ListSegmentHistoryResponseSchema,
  ListSegmentsResponseSchema,
  PreviewQueryResponseSchema,
  type Query,
  RollbackSegmentResponseSchema,
  type Schedule,
  SegmentHistoryAction,
  SegmentStatus,
  SegmentType,
} from "../client/index.js";
import { table, withSession } from "./connection.js";
import { enumName, evaluationLine, segmentDetails, when } from "./format.js";

const TYPES: Record<string, SegmentType> = { static: SegmentType.STATIC, dynamic: SegmentType.DYNAMIC, everyone: SegmentType.EVERYONE };
const TRANSITIONS = ["activate", "pause", "resume", "archive", "restore"] as const;

interface DefinitionOptions {
  description?: string;
  sql?: string;
  filter?: string;
  cron?: string;
  timeZone?: string;
}

/** Adds the segment commands to `root`. */
export function segmentCommands(root: Command): void {
  const definition = (command: Command) =>
    command
      .option("--description <text>", "what the segment is for")
      .option("--sql <select>", "DYNAMIC: a SELECT returning a user_id column")
      .option("--filter <json>", "DYNAMIC: a filter, as proto JSON (see segment.proto Filter)")
      .option("--cron <expression>", "DYNAMIC: evaluate on this schedule")
      .option("--time-zone <iana>", "the schedule's and filter windows' time zone (default UTC)");

  definition(root.command("create").description("create a segment (DRAFT)").argument("<name>"))
    .addOption(new Option("--type <type>", "how members are managed").choices(Object.keys(TYPES)).default("static"))
    .action((name: string, options: DefinitionOptions & { type: string }, command: Command) =>
      withSession(command, async ({ client, printMessage }) => {
        const created = await client.segments.createSegment({
          name,
          type: TYPES[options.type] ?? SegmentType.UNSPECIFIED,
          description: options.description ?? "",
          ...queryAndSchedule(options),
        });
        printMessage(GetSegmentResponseSchema, create(GetSegmentResponseSchema, { segment: created.segment }), (r) =>
          segmentDetails(r.segment),
        );
      }),
    );

  root
    .command("list")
    .description("list segments (not archived ones unless --archived)")
    .option("--archived", "include archived segments")
    .addOption(new Option("--type <type>", "only this type").choices(Object.keys(TYPES)))
    .action((options: { archived?: boolean; type?: string }, command: Command) =>
      withSession(command, async ({ client, printMessage }) => {
        const all = create(ListSegmentsResponseSchema);
        let pageToken = "";
        do {
          const page = await client.segments.listSegments({
            pageSize: 1000,
            pageToken,
            showArchived: options.archived === true,
            type: options.type === undefined ? SegmentType.UNSPECIFIED : (TYPES[options.type] ?? SegmentType.UNSPECIFIED),
          });
          all.segments.push(...page.segments);
          pageToken = page.nextPageToken;
        } while (pageToken !== "");
        printMessage(ListSegmentsResponseSchema, all, (r) =>
          table(
            ["ID", "NAME", "TYPE", "STATUS", "MEMBERS", "VERSION"],
            r.segments.map((s) => [
              s.id,
              s.name,
              enumName(SegmentType, s.type),
              enumName(SegmentStatus, s.status),
              s.memberCount.toString(),
              s.version.toString(),
            ]),
          ),
        );
      }),
    );

  root
    .command("get")
    .description("show a segment")
    .argument("<segment-id>")
    .action((segmentId: string, _options: unknown, command: Command) =>
      withSession(command, async ({ client, printMessage }) => {
        printMessage(GetSegmentResponseSchema, await client.segments.getSegment({ segmentId }), (r) => segmentDetails(r.segment));
      }),
    );

  definition(root.command("update").description("change a segment's definition (only the options given)").argument("<segment-id>"))
    .option("--name <name>", "a new name")
    .action((segmentId: string, options: DefinitionOptions & { name?: string }, command: Command) =>
      withSession(command, async ({ client, printMessage }) => {
        const paths: string[] = [];
        if (options.name !== undefined) paths.push("name");
        if (options.description !== undefined) paths.push("description");
        if (options.sql !== undefined || options.filter !== undefined) paths.push("query");
        if (options.cron !== undefined) paths.push("schedule");
        const updated = await client.segments.updateSegment({
          segmentId,
          segment: { name: options.name ?? "", description: options.description ?? "", ...queryAndSchedule(options) },
          updateMask: { paths },
        });
        printMessage(GetSegmentResponseSchema, create(GetSegmentResponseSchema, { segment: updated.segment }), (r) =>
          segmentDetails(r.segment),
        );
      }),
    );

  for (const transition of TRANSITIONS) {
    root
      .command(transition)
      .description(`${transition} a segment`)
      .argument("<segment-id>")
      .action((segmentId: string, _options: unknown, command: Command) =>
        withSession(command, async ({ client, printMessage }) => {
          const method = `${transition}Segment` as const;
          const { segment } = await client.segments[method]({ segmentId });
          printMessage(
            GetSegmentResponseSchema,
            create(GetSegmentResponseSchema, { segment }),
            (r) => `${r.segment?.id} is ${enumName(SegmentStatus, r.segment?.status ?? 0)}`,
          );
        }),
      );
  }

  root
    .command("delete")
    .description("delete a DRAFT segment (others are archived instead)")
    .argument("<segment-id>")
    .action((segmentId: string, _options: unknown, command: Command) =>
      withSession(command, async ({ client, print }) => {
        await client.segments.deleteSegment({ segmentId });
        print({ deleted: segmentId }, (v) => `deleted ${v.deleted}`);
      }),
    );

  root
    .command("history")
    .description("a segment's audit trail, newest first")
    .argument("<segment-id>")
    .action((segmentId: string, _options: unknown, command: Command) =>
      withSession(command, async ({ client, printMessage }) => {
        const history = await client.segments.listSegmentHistory({ segmentId, pageSize: 1000 });
        printMessage(ListSegmentHistoryResponseSchema, history, (r) =>
          table(
            ["TIME", "ACTION", "FROM", "TO", "CALLER", "ON BEHALF OF", "FIELDS"],
            r.entries.map((e) => [
              when(e.time),
              enumName(SegmentHistoryAction, e.action),
              enumName(SegmentStatus, e.fromStatus),
              enumName(SegmentStatus, e.toStatus),
              e.caller,
              e.onBehalfOf,
              e.changedFields.join(","),
            ]),
          ),
        );
      }),
    );

  root
    .command("diff")
    .description("who entered and left between two versions")
    .argument("<segment-id>")
    .requiredOption("--from <version>", "the older version")
    .option("--to <version>", "the newer version (default: current)")
    .action((segmentId: string, options: { from: string; to?: string }, command: Command) =>
      withSession(command, async ({ client, printMessage }) => {
        const diff = await client.segments.diffMembership({
          segmentId,
          fromVersion: BigInt(options.from),
          toVersion: BigInt(options.to ?? "0"),
          pageSize: 10_000,
        });
        printMessage(DiffMembershipResponseSchema, diff, (r) =>
          [
            `version ${options.from} → ${r.toVersion}: ${r.enteredCount} entered, ${r.leftCount} left`,
            ...r.enteredUserIds.map((id) => `+ ${id}`),
            ...r.leftUserIds.map((id) => `- ${id}`),
          ].join("\n"),
        );
      }),
    );

  root
    .command("rollback")
    .description("set a segment's membership to that of an earlier version (as a new version)")
    .argument("<segment-id>")
    .requiredOption("--to <version>", "the version to return to")
    .action((segmentId: string, options: { to: string }, command: Command) =>
      withSession(command, async ({ client, printMessage }) => {
        const done = await client.segments.rollbackSegment({ segmentId, toVersion: BigInt(options.to) });
        printMessage(RollbackSegmentResponseSchema, done, (r) => `now version ${r.version} with ${r.memberCount} members`);
      }),
    );

  root
    .command("evaluate")
    .description("run a DYNAMIC segment's query now and replace its membership")
    .argument("<segment-id>")
    .action((segmentId: string, _options: unknown, command: Command) =>
      withSession(command, async ({ client, printMessage }) => {
        const done = await client.segments.evaluateSegment({ segmentId });
        printMessage(EvaluateSegmentResponseSchema, done, (r) => (r.evaluation === undefined ? "" : evaluationLine(r.evaluation)));
      }),
    );

  root
    .command("evaluations")
    .description("a DYNAMIC segment's evaluation runs, newest first")
    .argument("<segment-id>")
    .action((segmentId: string, _options: unknown, command: Command) =>
      withSession(command, async ({ client, printMessage }) => {
        const runs = await client.segments.listEvaluations({ segmentId, pageSize: 100 });
        printMessage(ListEvaluationsResponseSchema, runs, (r) => r.evaluations.map(evaluationLine).join("\n"));
      }),
    );

  definition(root.command("preview").description("count a query's users and show a sample; writes nothing"))
    .option("--sample <n>", "how many ids to show", "10")
    .action((options: DefinitionOptions & { sample: string }, command: Command) =>
      withSession(command, async ({ client, printMessage }) => {
        const { query } = queryAndSchedule(options);
        const preview = await client.segments.previewQuery({ query, timeZone: options.timeZone ?? "", sampleSize: Number(options.sample) });
        printMessage(PreviewQueryResponseSchema, preview, (r) => [`${r.count} users`, ...r.sampleUserIds].join("\n"));
      }),
    );
}

/** The query and schedule the options describe (none when not given). */
function queryAndSchedule(options: DefinitionOptions): { query?: Query; schedule?: Schedule } {
  if (options.sql !== undefined && options.filter !== undefined) throw new Error("give --sql or --filter, not both");
  const query =
    options.sql !== undefined
      ? { kind: { case: "sql" as const, value: options.sql } }
      : options.filter !== undefined
        ? { kind: { case: "filter" as const, value: fromJson(FilterSchema, JSON.parse(options.filter)) } }
        : undefined;
  const schedule = options.cron === undefined ? undefined : { cron: options.cron, timeZone: options.timeZone ?? "" };
  return {
    ...(query === undefined ? {} : { query: query as Query }),
    ...(schedule === undefined ? {} : { schedule: schedule as Schedule }),
  };
}
