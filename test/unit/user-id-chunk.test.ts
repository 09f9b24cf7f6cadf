import { describe, expect, it } from "vitest";
import { UserIdChunkBuilder } from "../../src/store/user-id-chunk.js";

describe("UserIdChunkBuilder", () => {
  it("hands out ids as bytes and as strings, in order", () => {
    const builder = new UserIdChunkBuilder(4);
    const source = new TextEncoder().encode("xx alice é😀 bob");
    builder.addBytes(source, 3, 8);
    builder.addBytes(source, 9, 15);
    builder.addString("tab\there");
    expect(builder.length).toBe(3);
    expect(builder.full).toBe(false);
    const chunk = builder.take();
    expect(chunk.length).toBe(3);
    expect([...chunk]).toEqual(["alice", "é😀", "tab\there"]);
    expect(chunk.id(1)).toBe("é😀");
    expect(Array.from(chunk.ends)).toEqual([5, 11, 19]);
    expect(builder.length).toBe(0);
  });

  it("refuses, in the same pass, bytes holding the refused byte, and adds nothing then", () => {
    const builder = new UserIdChunkBuilder(4);
    const source = new TextEncoder().encode("a\\tb plain");
    expect(builder.addBytes(source, 0, 4, 0x5c)).toBe(false);
    expect(builder.length).toBe(0);
    expect(builder.addBytes(source, 5, 10, 0x5c)).toBe(true);
    expect([...builder.take()]).toEqual(["plain"]);
  });

  it("grows past its capacity and its first buffer, and reuses its buffers after a take", () => {
    const builder = new UserIdChunkBuilder(2);
    const long = "x".repeat(200);
    for (let i = 0; i < 5; i++) builder.addString(`${long}${i}`);
    expect(builder.full).toBe(true);
    const first = builder.take();
    expect([...first]).toEqual([0, 1, 2, 3, 4].map((i) => `${long}${i}`));
    builder.addString("next");
    // The buffers are reused: the first chunk's bytes now start with the next chunk's id.
    expect([...builder.take()]).toEqual(["next"]);
    expect(first.id(0).startsWith("next")).toBe(true);
  });
});
