import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

/** A safetensors file's header length, tensor entries, __metadata__ (keys sorted: Python's order is per process) and data sha256. */
export const safetensorsParts = (path: string) => {
  const raw = readFileSync(path);
  const n = Number(raw.readBigUInt64LE(0));
  const { __metadata__: metadata, ...entries } = JSON.parse(raw.subarray(8, 8 + n).toString("utf8")) as Record<string, unknown>;
  const sorted = Object.fromEntries(Object.entries((metadata ?? {}) as Record<string, string>).sort());
  return { n, metadata: sorted, entries, sha: createHash("sha256").update(raw.subarray(8 + n)).digest("hex") };
};
