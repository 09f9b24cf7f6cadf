import { describe, expect, it } from "vitest";
import { ImportParser } from "../../src/service/import-parser.js";
import { UserIdChunk } from "../../src/store/user-id-chunk.js";

const bytes = (text: string) => new TextEncoder().encode(text);

describe("ImportParser", () => {
  it("joins lines split across chunks, including a split UTF-8 sequence, and CRLF", () => {
    const parser = new ImportParser();
    const all = bytes("alice\r\nbo");
    const emoji = bytes("b\nzoë🙂\n  carol  \n\ndave");
    const cut = emoji.indexOf(0xf0) + 2; // inside the 4-byte emoji
    const ids = [
      ...parser.push([], all).flatMap((batch) => [...batch]),
      ...parser.push([], emoji.subarray(0, cut)).flatMap((batch) => [...batch]),
      ...parser.push([], emoji.subarray(cut)).flatMap((batch) => [...batch]),
      ...parser.finish(),
    ];
    expect(ids).toEqual(["alice", "bob", "zoë🙂", "carol", "dave"]);
    expect(parser.invalidCount).toBe(0);
  });

  it("hands on ids the wire decoder checked as they are, numbering the entries after them", () => {
    const parser = new ImportParser();
    const chunk = new UserIdChunk(bytes("ab"), Uint32Array.from([1, 2]));
    const batches = parser.push(chunk, bytes("c\n\u0000\n"));
    expect(batches[0]).toBe(chunk);
    expect(batches.slice(1)).toEqual([["c"]]);
    expect(parser.invalid).toEqual([{ line: 4, reason: "contains U+0000 (NUL)" }]);
  });

  it("numbers entries across user_ids and text, keeps the first 100 rejections", () => {
    const parser = new ImportParser();
    parser.push(["ok", ""], bytes(`${"x".repeat(257)}\n`));
    parser.push([], new Uint8Array([0x61, 0xff, 0x0a]));
    expect(parser.invalid).toEqual([
      { line: 2, reason: "empty id" },
      { line: 3, reason: "longer than 256 bytes" },
      { line: 4, reason: "not valid UTF-8" },
    ]);
    parser.push(
      Array.from({ length: 200 }, () => ""),
      new Uint8Array(0),
    );
    expect(parser.invalidCount).toBe(203);
    expect(parser.invalid).toHaveLength(100);
  });

  it("reports entries holding U+0000 as invalid, from user_ids and from text", () => {
    const parser = new ImportParser();
    const ids = [...parser.push(["a\u0000b", "ok"], bytes("x\u0000\nfine\n")).flatMap((batch) => [...batch]), ...parser.finish()];
    expect(ids).toEqual(["ok", "fine"]);
    expect(parser.invalid).toEqual([
      { line: 1, reason: "contains U+0000 (NUL)" },
      { line: 3, reason: "contains U+0000 (NUL)" },
    ]);
  });
});
