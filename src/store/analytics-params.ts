/**
 * COPY cannot take bind parameters, so an analytics query's `$n` placeholders are rewritten to
 * read transaction-local settings (`current_setting('segments.pN')`), whose values are set with
 * bound `set_config` calls first. A parameter's value therefore never becomes SQL text.
 */
import type { Statement } from "./pglite-database.js";

/** A query with its values moved out of the text: run `setup` first, then use `text`. */
export interface SettingQuery {
  /** The query, every `$n` replaced by a read of setting `segments.pN` (cast by the value's type). */
  text: string;
  /** Bound `set_config` calls (transaction-local) that give the settings their values. */
  setup: Statement[];
}

/**
 * Rewrites the `$n` placeholders of `text` (outside string literals, quoted identifiers,
 * dollar quotes and comments) into setting reads, and returns the calls that set them.
 * Values: string → text; number → numeric; bigint → int8; boolean → boolean; Date → timestamptz;
 * string[] → text[]; null/undefined → a typeless NULL. A cast written after `$n` still applies
 * (`$1::int` becomes `(current_setting('segments.p1')::numeric)::int`).
 */
export function toSettingReferences(text: string, params: readonly unknown[]): SettingQuery {
  const encoded = params.map((value, i) => encode(value, i + 1));
  const calls: string[] = [];
  const values: string[] = [];
  encoded.forEach((param, i) => {
    if (param === undefined) return;
    values.push(param.value);
    calls.push(`set_config('segments.p${i + 1}', $${values.length}, true)`);
  });
  const out = rewrite(text, (n) => {
    if (n < 1 || n > params.length) throw new RangeError(`the query uses $${n} but has ${params.length} parameters`);
    const param = encoded[n - 1];
    return param === undefined ? "NULL" : `(current_setting('segments.p${n}')${param.cast})`;
  });
  return { text: out, setup: calls.length === 0 ? [] : [{ text: `SELECT ${calls.join(", ")}`, params: values }] };
}

function encode(value: unknown, n: number): { value: string; cast: string } | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === "string") return { value, cast: "" };
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new RangeError(`parameter $${n} is not a finite number`);
    return { value: String(value), cast: "::numeric" };
  }
  if (typeof value === "bigint") return { value: String(value), cast: "::int8" };
  if (typeof value === "boolean") return { value: String(value), cast: "::boolean" };
  if (value instanceof Date) return { value: value.toISOString(), cast: "::timestamptz" };
  if (Array.isArray(value) && value.every((v) => typeof v === "string" || v === null)) {
    const items = value.map((v) => (v === null ? "NULL" : `"${(v as string).replace(/[\\"]/g, "\\$&")}"`));
    return { value: `{${items.join(",")}}`, cast: "::text[]" };
  }
  throw new RangeError(`parameter $${n} has a type the analytics runner cannot pass (${typeof value})`);
}

/** Replaces each `$n` token of `sql` with `replace(n)`, leaving literals, identifiers and comments alone. */
function rewrite(sql: string, replace: (n: number) => string): string {
  let out = "";
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i] as string;
    const next = sql[i + 1];
    let end = i + 1;
    if (c === "'") {
      // E'…' strings allow backslash escapes; a standard string only doubles quotes.
      const escapes = i > 0 && /[eE]/.test(sql[i - 1] ?? "") && !/[\w$]/.test(sql[i - 2] ?? "");
      end = i + 1;
      while (end < n) {
        if (escapes && sql[end] === "\\") end += 2;
        else if (sql[end] === "'" && sql[end + 1] === "'") end += 2;
        else if (sql[end] === "'") break;
        else end++;
      }
      end++;
    } else if (c === '"') {
      end = sql.indexOf('"', i + 1);
      while (end !== -1 && sql[end + 1] === '"') end = sql.indexOf('"', end + 2);
      end = end === -1 ? n : end + 1;
    } else if (c === "-" && next === "-") {
      end = sql.indexOf("\n", i);
      end = end === -1 ? n : end + 1;
    } else if (c === "/" && next === "*") {
      let depth = 1;
      end = i + 2;
      while (end < n && depth > 0) {
        const pair = sql.slice(end, end + 2);
        if (pair === "/*" || pair === "*/") {
          depth += pair === "/*" ? 1 : -1;
          end += 2;
        } else end++;
      }
    } else if (c === "$" && next !== undefined && /\d/.test(next) && !/[\w$]/.test(sql[i - 1] ?? "")) {
      let digits = i + 1;
      while (digits < n && /\d/.test(sql[digits] as string)) digits++;
      out += replace(Number(sql.slice(i + 1, digits)));
      i = digits;
      continue;
    } else if (c === "$" && !/[\w$]/.test(sql[i - 1] ?? "")) {
      // A dollar quote: $tag$ … $tag$ (the tag never starts with a digit).
      const tag = /^\$[A-Za-z_\u0080-\uffff][\w\u0080-\uffff]*\$|^\$\$/.exec(sql.slice(i));
      if (tag !== null) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        end = close === -1 ? n : close + tag[0].length;
      }
    }
    out += sql.slice(i, end);
    i = end;
  }
  return out;
}
