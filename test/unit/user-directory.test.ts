import { describe, expect, it } from "vitest";
import { UserDirectory } from "../../src/index/user-directory.js";

describe("UserDirectory", () => {
  it("maps ids to uids and back", () => {
    const directory = new UserDirectory();
    directory.add(0, "alice");
    directory.add(7, "bob");
    expect(directory.lookup("alice")).toBe(0);
    expect(directory.lookup("bob")).toBe(7);
    expect(directory.lookup("carol")).toBeUndefined();
    expect(directory.externalId(7)).toBe("bob");
    expect(directory.externalId(3)).toBeUndefined();
    expect(directory.size).toBe(2);
  });

  it("accepts the same pair twice and refuses a conflicting one", () => {
    const directory = new UserDirectory();
    directory.add(1, "alice");
    directory.add(1, "alice");
    expect(directory.size).toBe(1);
    expect(() => directory.add(2, "alice")).toThrow(/conflict/);
    expect(() => directory.add(1, "bob")).toThrow(/conflict/);
  });
});
