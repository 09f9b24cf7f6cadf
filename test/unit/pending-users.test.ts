import { describe, expect, it } from "vitest";
import { idHash } from "../../src/index/user-directory.js";
import { PendingUsers } from "../../src/service/user-registry.js";

describe("PendingUsers", () => {
  it("numbers distinct ids in arrival order, keeping each one's hash, from strings and from bytes alike", () => {
    const pending = new PendingUsers(0, 1);
    for (const id of ["b", "用户", "b", "c"]) pending.add(id);
    const bytes = new TextEncoder().encode("cd");
    pending.addUtf8(bytes, 0, 1);
    pending.addUtf8(bytes, 1, 2);
    expect(pending.size).toBe(4);
    expect([0, 1, 2, 3].map((i) => pending.ids.externalId(i))).toEqual(["b", "用户", "c", "d"]);
    expect([0, 1, 2, 3].map((i) => pending.hashOf(i))).toEqual(["b", "用户", "c", "d"].map(idHash));
  });

  it("refuses an id with a lone surrogate instead of storing it as U+FFFD, another user's id", () => {
    const pending = new PendingUsers(0);
    expect(() => pending.add("a\uD800")).toThrow(RangeError);
    pending.add("a\uD83D\uDE00");
    expect(pending.size).toBe(1);
  });
});
