/** `$n` → setting reads: only real placeholders are rewritten, and values never enter the text. */
import { describe, expect, it } from "vitest";
import { toSettingReferences } from "../../src/store/analytics-params.js";
import { unescapeCopyText } from "../../src/store/analytics-source.js";

describe("toSettingReferences", () => {
  it("rewrites placeholders with a cast by the value's type, and binds the values to set_config", () => {
    const at = new Date("2026-01-01T00:00:00Z");
    const out = toSettingReferences("SELECT user_id FROM events WHERE name = $1 AND ts >= $2 AND n > $3::int", ["pricing'; --", at, 3]);
    expect(out.text).toBe(
      "SELECT user_id FROM events WHERE name = (current_setting('segments.p1')) AND ts >= (current_setting('segments.p2')::timestamptz) AND n > (current_setting('segments.p3')::numeric)::int",
    );
    expect(out.setup).toEqual([
      {
        text: "SELECT set_config('segments.p1', $1, true), set_config('segments.p2', $2, true), set_config('segments.p3', $3, true)",
        params: ["pricing'; --", "2026-01-01T00:00:00.000Z", "3"],
      },
    ]);
  });

  it.each([
    ["a string literal", "SELECT '$1' AS user_id"],
    ["an escape string", "SELECT E'\\' $1' AS user_id"],
    ["a quoted identifier", 'SELECT 1 AS "$1"'],
    ["a dollar quote", "SELECT $x$ $1 $x$ AS user_id"],
    ["a line comment", "SELECT 1 -- $1\n"],
    ["a nested block comment", "SELECT 1 /* a /* $1 */ $1 */"],
  ])("leaves $1 inside %s alone", (_, text) => {
    expect(toSettingReferences(text, ["v"]).text).toBe(text);
  });

  it("passes null as NULL, string arrays as text[], and refuses a placeholder without a value", () => {
    expect(toSettingReferences("SELECT $1, $2", [null, ['a"b', "c\\d"]])).toEqual({
      text: "SELECT NULL, (current_setting('segments.p2')::text[])",
      setup: [{ text: "SELECT set_config('segments.p2', $1, true)", params: ['{"a\\"b","c\\\\d"}'] }],
    });
    expect(() => toSettingReferences("SELECT $2", ["x"])).toThrow(/uses \$2 but has 1 parameters/);
  });
});

describe("unescapeCopyText", () => {
  it("decodes COPY text-format escapes", () => {
    expect(unescapeCopyText("a\\tb\\nc\\rd\\\\e\\101\\x42")).toBe("a\tb\nc\rd\\eAB");
  });
});
