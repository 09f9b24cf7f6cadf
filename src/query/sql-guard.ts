/**
 * Vets a Query.sql at save time with the real Postgres parser (libpg-query, Postgres 18's
 * grammar compiled to WASM). A read-only transaction is not a boundary on its own — over the
 * simple protocol `COMMIT; DROP TABLE x` ends it — so the text must be exactly one SELECT, and
 * nothing inside that SELECT may write, lock, or call a function that changes settings or reaches
 * outside the query. The AST is walked generically (every object key of every node), so grammar a
 * hand-written visitor does not know about still has its node names checked.
 */
import type { parse } from "libpg-query";
import { InvalidArgumentError } from "../errors.js";

/**
 * Functions a query may not call, by exact name. Each either changes state a SELECT should not
 * (settings, sequences, notifications, locks, transaction ids), acts on other sessions or the
 * server, reads or writes the server's files, or runs SQL text of its own, which would slip past
 * this parse (query_to_xml, ts_stat, ts_rewrite).
 */
const DENIED_FUNCTIONS = new Set([
  // settings: set_config is SET in function form (e.g. set_config('role', 'postgres', true))
  "set_config",
  // other sessions and the server
  "pg_terminate_backend",
  "pg_cancel_backend",
  "pg_reload_conf",
  "pg_rotate_logfile",
  "pg_promote",
  "pg_switch_wal",
  "pg_create_restore_point",
  "pg_backup_start",
  "pg_backup_stop",
  "pg_log_backend_memory_contexts",
  "pg_import_system_collations",
  "pg_export_snapshot",
  "pg_logical_emit_message",
  // the server's file system (pg_file_* and pg_ls_* are prefixes below)
  "pg_read_file",
  "pg_read_binary_file",
  "pg_stat_file",
  "pg_logdir_ls",
  // replication slots: reading changes from a logical slot consumes them
  "pg_replication_slot_advance",
  "pg_sync_replication_slots",
  "pg_log_standby_snapshot",
  "pg_copy_physical_replication_slot",
  "pg_copy_logical_replication_slot",
  // statistics resets outside the pg_stat_reset prefix
  "pg_stat_statements_reset",
  // large objects outside the lo_ prefix
  "loread",
  "lowrite",
  // notifications and transaction ids (txid_current assigns one: a write)
  "pg_notify",
  "pg_current_xact_id",
  "pg_current_xact_id_if_assigned",
  // sequences
  "nextval",
  "setval",
  // SQL text run by the function itself
  "query_to_xml",
  "query_to_xmlschema",
  "query_to_xml_and_xmlschema",
  "cursor_to_xml",
  "cursor_to_xmlschema",
  "ts_stat",
  "ts_rewrite",
]);

/**
 * Function name prefixes a query may not call: large objects (lo_import / lo_export read and write
 * server files), dblink (another connection, outside this transaction), advisory locks (held past
 * the query), directory listings and adminpack's file functions, transaction-id functions,
 * replication slots and origins, WAL replay control, statistics resets, and pg_background (a
 * second session).
 */
const DENIED_PREFIXES = [
  "lo_",
  "dblink",
  "pg_advisory",
  "pg_try_advisory",
  "pg_ls_",
  "pg_file_",
  "pg_logical_slot_",
  "pg_background_",
  "txid_",
  "pg_create_",
  "pg_drop_replication_slot",
  "pg_replication_",
  "pg_wal_replay_",
  "pg_stat_reset",
];

/** Node names that write, wherever they appear (a data-modifying CTE is the usual place). */
const WRITING_NODES: Record<string, string> = {
  InsertStmt: "INSERT",
  UpdateStmt: "UPDATE",
  DeleteStmt: "DELETE",
  MergeStmt: "MERGE",
};

/** Top-level statements whose SQL name is not simply their node name spelled out. */
const STATEMENT_NAMES: Record<string, string> = {
  ...WRITING_NODES,
  VacuumStmt: "VACUUM",
  CopyStmt: "COPY",
  DoStmt: "DO",
  CallStmt: "CALL",
  ExplainStmt: "EXPLAIN",
  LockStmt: "LOCK",
  PrepareStmt: "PREPARE",
  ExecuteStmt: "EXECUTE",
  DeallocateStmt: "DEALLOCATE",
  DeclareCursorStmt: "DECLARE CURSOR",
  FetchStmt: "FETCH",
  ClosePortalStmt: "CLOSE",
  NotifyStmt: "NOTIFY",
  ListenStmt: "LISTEN",
  UnlistenStmt: "UNLISTEN",
  CreateTableAsStmt: "CREATE TABLE AS",
  DiscardStmt: "DISCARD",
  CheckPointStmt: "CHECKPOINT",
  LoadStmt: "LOAD",
  VariableShowStmt: "SHOW",
  DropStmt: "DROP",
  TruncateStmt: "TRUNCATE",
};

let parser: Promise<typeof parse> | undefined;

/** libpg-query's WASM loads once per process; every later call reuses it. */
function loadParser(): Promise<typeof parse> {
  parser ??= import("libpg-query").then(async (module) => {
    await module.loadModule();
    return module.parse;
  });
  return parser;
}

/** Refuses `sql` (INVALID_ARGUMENT on `field`) unless it is exactly one read-only SELECT with a `user_id` column. */
export async function checkSelectSql(sql: string, field: string): Promise<void> {
  const parseSql = await loadParser();
  if (sql.trim() === "") throw new InvalidArgumentError(field, "must be one SELECT statement; it is empty");
  let tree: unknown;
  try {
    tree = await parseSql(sql);
  } catch (error: unknown) {
    throw new InvalidArgumentError(field, `does not parse: ${describeParseError(error)}`);
  }
  const stmts = (tree as { stmts?: { stmt?: Record<string, unknown> }[] }).stmts ?? [];
  if (stmts.length === 0) throw new InvalidArgumentError(field, "must be one SELECT statement; it holds none");
  const names = stmts.map((s) => statementName(s.stmt ?? {}));
  if (stmts.length > 1) {
    throw new InvalidArgumentError(field, `holds ${stmts.length} statements (${names.join("; ")}); only one SELECT is allowed`);
  }
  const stmt = stmts[0]?.stmt ?? {};
  const select = stmt.SelectStmt;
  if (select === undefined) throw new InvalidArgumentError(field, `${names[0]} is not allowed (only one SELECT)`);
  walk(select, field);
  checkUserIdColumn(select as SelectNode, field);
}

/** The SQL name of a top-level statement node, e.g. DropStmt → DROP, AlterTableStmt → ALTER TABLE. */
function statementName(stmt: Record<string, unknown>): string {
  const [node, body] = Object.entries(stmt)[0] ?? ["unknown", {}];
  const fields = (body ?? {}) as Record<string, unknown>;
  if (node === "SelectStmt") return "SELECT";
  if (node === "TransactionStmt") {
    // TRANS_STMT_BEGIN → BEGIN, TRANS_STMT_ROLLBACK_TO → ROLLBACK TO, …
    return String(fields.kind ?? "TRANS_STMT_TRANSACTION")
      .replace(/^TRANS_STMT_/, "")
      .replaceAll("_", " ");
  }
  if (node === "VariableSetStmt") {
    const kind = String(fields.kind ?? "");
    const verb = kind.startsWith("VAR_RESET") ? "RESET" : "SET";
    return typeof fields.name === "string" ? `${verb} ${fields.name.toUpperCase()}` : verb;
  }
  const known = STATEMENT_NAMES[node];
  if (known !== undefined) return known;
  // CreateStmt → CREATE, AlterTableStmt → ALTER TABLE, GrantRoleStmt → GRANT ROLE
  return node
    .replace(/Stmt$/, "")
    .replace(/([a-z])([A-Z])/g, "$1 $2")
    .toUpperCase();
}

/** Every node under `node`, checked by its key: writes, locks, INTO and denied function calls. */
function walk(node: unknown, field: string): void {
  if (Array.isArray(node)) {
    for (const child of node) walk(child, field);
    return;
  }
  if (node === null || typeof node !== "object") return;
  for (const [key, child] of Object.entries(node)) {
    const writing = WRITING_NODES[key];
    if (writing !== undefined) throw new InvalidArgumentError(field, `${writing} is not allowed, not even inside a WITH (only one SELECT)`);
    if (key === "lockingClause" || key === "LockingClause") {
      if (!Array.isArray(child) || child.length > 0) {
        throw new InvalidArgumentError(field, "locking clauses (FOR UPDATE / FOR SHARE …) are not allowed: the query only reads");
      }
    }
    if (key === "intoClause" || key === "IntoClause") {
      throw new InvalidArgumentError(field, "SELECT INTO is not allowed: the query only reads (it creates a table)");
    }
    if (key.endsWith("Stmt") && key !== "SelectStmt") {
      throw new InvalidArgumentError(field, `${statementName({ [key]: child })} is not allowed inside a SELECT`);
    }
    if (key === "FuncCall") checkFunction(child, field);
    walk(child, field);
  }
}

function checkFunction(call: unknown, field: string): void {
  const names = ((call as { funcname?: unknown[] }).funcname ?? []).map(stringValue);
  const name = (names.at(-1) ?? "").toLowerCase();
  if (DENIED_FUNCTIONS.has(name) || DENIED_PREFIXES.some((prefix) => name.startsWith(prefix))) {
    throw new InvalidArgumentError(
      field,
      `calling ${names.join(".")}() is not allowed: it changes settings or state, or reaches outside the query`,
    );
  }
}

/** The text of a `{ String: { sval } }` node, or "" for anything else (e.g. `*`). */
function stringValue(node: unknown): string {
  const sval = (node as { String?: { sval?: unknown } } | null)?.String?.sval;
  return typeof sval === "string" ? sval : "";
}

interface SelectNode {
  op?: string;
  larg?: SelectNode;
  targetList?: { ResTarget?: { name?: string; val?: unknown } }[];
  valuesLists?: unknown[];
}

/** The output must have exactly one column named user_id; a set operation takes its names from its left-most arm. */
function checkUserIdColumn(select: SelectNode, field: string): void {
  let arm = select;
  while (arm.op !== undefined && arm.op !== "SETOP_NONE" && arm.larg !== undefined) arm = arm.larg;
  if (arm.valuesLists !== undefined) {
    throw new InvalidArgumentError(field, "a bare VALUES has no user_id column; write SELECT column1 AS user_id FROM (VALUES …) v");
  }
  let found = 0;
  for (const target of arm.targetList ?? []) {
    const { name, val } = target.ResTarget ?? {};
    if (name === undefined && isStar(val)) {
      throw new InvalidArgumentError(field, "SELECT * is not allowed: name the user_id column explicitly (e.g. SELECT user_id FROM …)");
    }
    if ((name ?? columnName(val)) === "user_id") found++;
  }
  if (found === 0) throw new InvalidArgumentError(field, "must return a column named user_id (e.g. SELECT id AS user_id FROM users)");
  if (found > 1) throw new InvalidArgumentError(field, `returns ${found} columns named user_id; keep exactly one`);
}

/** The name Postgres gives an unaliased output column, for the forms that can be user_id: a column (also cast or collated). */
function columnName(val: unknown): string | undefined {
  const node = val as { ColumnRef?: { fields?: unknown[] }; TypeCast?: { arg?: unknown }; CollateClause?: { arg?: unknown } } | undefined;
  if (node?.ColumnRef !== undefined) return stringValue(node.ColumnRef.fields?.at(-1));
  if (node?.TypeCast !== undefined) return columnName(node.TypeCast.arg);
  if (node?.CollateClause !== undefined) return columnName(node.CollateClause.arg);
  return undefined;
}

function isStar(val: unknown): boolean {
  const fields = (val as { ColumnRef?: { fields?: unknown[] } } | undefined)?.ColumnRef?.fields;
  const last = fields?.at(-1) as { A_Star?: unknown } | undefined;
  return last?.A_Star !== undefined;
}

/** The parser's message and where (1-based character position, as Postgres reports it). */
function describeParseError(error: unknown): string {
  const details = (error as { sqlDetails?: { message?: unknown; cursorPosition?: unknown } }).sqlDetails;
  const message = typeof details?.message === "string" ? details.message : error instanceof Error ? error.message : String(error);
  const position = details?.cursorPosition;
  return typeof position === "number" && position >= 0 ? `${message} (at character ${position + 1})` : message;
}
