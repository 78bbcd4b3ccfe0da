import { describe, expect, it, vi } from "vitest";
import { hasNodeBuiltins, nodeBuiltin } from "./node-builtin.js";

describe("nodeBuiltin", () => {
  it("returns Node's own module under Node", async () => {
    expect(hasNodeBuiltins()).toBe(true);
    const path = nodeBuiltin<typeof import("node:path")>("node:path");
    expect(path).toBe(await import("node:path").then((m) => m.default));
    expect(path.join("a", "b")).toBe("a/b");
  });

  it("outside Node, every member throws naming the module when called", () => {
    vi.stubGlobal("process", undefined);
    try {
      expect(hasNodeBuiltins()).toBe(false);
      const { readFile } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
      expect(() => readFile("x")).toThrow("node:fs/promises (readFile) is only available in Node.js");
    } finally {
      vi.unstubAllGlobals();
    }
  });
});
