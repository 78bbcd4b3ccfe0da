import { readFileSync } from "node:fs";

// A minimal safetensors reader for the rotation fixtures (F64 / F32 / I32 / BF16 → f64 arrays). @llmq/serialization
// sits beside this package in the DAG, so tests read the files directly.

export interface RawTensor {
  readonly dtype: string;
  readonly shape: ReadonlyArray<number>;
  readonly data: Float64Array;
}

export const readSafetensors = (path: string): ReadonlyMap<string, RawTensor> => {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8")) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, RawTensor>();
  for (const [k, v] of Object.entries(header)) {
    if (k === "__metadata__") continue;
    const b = buf.subarray(8 + n + v.data_offsets[0], 8 + n + v.data_offsets[1]);
    const ab = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
    const data =
      v.dtype === "F64"
        ? new Float64Array(ab)
        : v.dtype === "F32"
          ? Float64Array.from(new Float32Array(ab))
          : v.dtype === "I32"
            ? Float64Array.from(new Int32Array(ab))
            : v.dtype === "BF16"
              ? Float64Array.from(new Uint16Array(ab), (h) => new Float32Array(new Uint32Array([h << 16]).buffer)[0]!)
              : null;
    if (data === null) continue;
    out.set(k, { dtype: v.dtype, shape: v.shape, data });
  }
  return out;
};
