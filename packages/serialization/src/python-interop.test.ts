import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DType, Tensor, castFromNumbers } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { afterAll, describe, expect, it } from "vitest";
import { compressModule } from "./compress-module.js";
import { decompressModule } from "./decompress-module.js";
import { deserializeSafetensors } from "./safetensors-reader.js";
import { writeSafetensors } from "./safetensors-writer.js";
import { hex } from "./test-support/fixtures.js";

// Live cross-checks against the Python libraries on random inputs (beyond the committed fixtures). They need a
// python with safetensors, torch and compressed-tensors 0.20.0: set LLMQ_PYTHON (e.g. $LLMQ_PYTHON).
const PY = process.env.LLMQ_PYTHON;
const tmp = mkdtempSync(join(tmpdir(), "llmq-interop-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const right = <A>(r: E.Either<unknown, A>): A => {
  if (E.isLeft(r)) throw new Error(`expected Right, got ${JSON.stringify(r.left)}`);
  return r.right;
};

/** Deterministic xorshift32 stream. */
const rng = (seed: number) => {
  let s = seed >>> 0 || 1;
  return (): number => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
};

const python = (script: string, arg: string): string => {
  const r = spawnSync(PY!, ["-c", script, arg], { encoding: "utf8", maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
};

const NAME_CHARS = ["a", "b", "Z", ".", "_", "0", "9", "é", "日", "\u{1F600}", "\uFFFF", '"', "\\", "\t", " ", "~"];
const DTYPES: ReadonlyArray<DType> = ["f64", "f32", "f16", "bf16", "f8_e4m3fn", "f8_e5m2", "i64", "i32", "i16", "i8", "u8", "bool"];

describe.skipIf(PY === undefined)("live interop with Python (LLMQ_PYTHON)", () => {
  it("Python safetensors re-saves 60 random llmq-written files to the same bytes", async () => {
    const r = rng(42);
    const files: string[] = [];
    for (let k = 0; k < 60; k++) {
      const n = Math.floor(r() * 7);
      const entries = new Map<string, Tensor>();
      for (let i = 0; i < n; i++) {
        const len = 1 + Math.floor(r() * 8);
        const name = Array.from({ length: len }, () => NAME_CHARS[Math.floor(r() * NAME_CHARS.length)]!).join("");
        const dtype = DTYPES[Math.floor(r() * DTYPES.length)]!;
        const shape = Array.from({ length: Math.floor(r() * 4) }, () => Math.floor(r() * 5));
        const size = shape.reduce((a, b) => a * b, 1);
        entries.set(name, castFromNumbers(dtype, Array.from({ length: size }, () => Math.floor(r() * 200) - 100), shape));
      }
      const p = join(tmp, `rand-${k}.safetensors`);
      right(await writeSafetensors(p, entries, r() < 0.5 ? { format: "pt" } : null)());
      files.push(p);
    }
    writeFileSync(join(tmp, "files.json"), JSON.stringify(files));
    python(
      `
import json, sys
from safetensors import safe_open
from safetensors.torch import load_file, save_file
for p in json.load(open(sys.argv[1])):
    with safe_open(p, "pt") as f:
        md = f.metadata()
    save_file(load_file(p), p + ".py", metadata=md)
`,
      join(tmp, "files.json"),
    );
    for (const p of files) expect(hex(new Uint8Array(readFileSync(`${p}.py`)))).toBe(hex(new Uint8Array(readFileSync(p))));
  });

  it("compressed-tensors decompresses llmq's pack-quantized output of random shapes to llmq's values", async () => {
    const r = rng(7);
    const cases: Array<{ file: string; bits: number; sym: boolean; strategy: string; gs: number | null }> = [];
    const expected = new Map<string, Tensor>();
    for (let k = 0; k < 24; k++) {
      const bits = 1 + Math.floor(r() * 8);
      const sym = r() < 0.5;
      const strategy = r() < 0.5 ? "group" : "channel";
      const gs = strategy === "group" ? [16, 32][Math.floor(r() * 2)]! : null;
      const experts = r() < 0.25 ? [2] : [];
      const rows = 1 + Math.floor(r() * 40);
      const cols = gs === null ? 1 + Math.floor(r() * 90) : gs * (1 + Math.floor(r() * 4));
      const shape = [...experts, rows, cols];
      const nq = shape.reduce((a, b) => a * b, 1);
      const lo = -(1 << (bits - 1));
      const codes = new Tensor("i8", shape, Int8Array.from({ length: nq }, () => lo + Math.floor(r() * (1 << bits))));
      const g = gs === null ? 1 : cols / gs;
      const qshape = [...experts, rows, g];
      const nqp = qshape.reduce((a, b) => a * b, 1);
      const scale = castFromNumbers("bf16", Array.from({ length: nqp }, () => 0.001 + r() * 0.05), qshape);
      const state = new Map<string, Tensor>([
        ["weight", codes],
        ["weight_scale", scale],
      ]);
      if (!sym) state.set("weight_zero_point", new Tensor("i8", qshape, Int8Array.from({ length: nqp }, () => lo + Math.floor(r() * (1 << bits)))));
      const scheme = { weights: { num_bits: bits, type: "int", symmetric: sym, strategy, group_size: gs } };
      const compressed = right(compressModule("pack-quantized", scheme, state));
      const file = join(tmp, `pack-${k}.safetensors`);
      right(await writeSafetensors(file, compressed, { format: "pt" })());
      expected.set(file, right(decompressModule("pack-quantized", scheme, compressed)).get("weight")!);
      cases.push({ file, bits, sym, strategy, gs });
    }
    writeFileSync(join(tmp, "cases.json"), JSON.stringify(cases));
    python(
      `
import json, sys, torch
from safetensors.torch import load_file, save_file
from compressed_tensors.compressors import BaseCompressor
from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
comp = BaseCompressor.get_value_from_registry("pack-quantized")
for c in json.load(open(sys.argv[1])):
    args = QuantizationArgs(num_bits=c["bits"], type="int", symmetric=c["sym"], strategy=c["strategy"], group_size=c["gs"])
    sd = load_file(c["file"])
    out = comp.decompress(sd, QuantizationScheme(targets=["Linear"], weights=args))
    save_file({"weight": out["weight"].contiguous()}, c["file"] + ".dq", metadata={"format": "pt"})
`,
      join(tmp, "cases.json"),
    );
    for (const c of cases) {
      const py = right(deserializeSafetensors(c.file, new Uint8Array(readFileSync(`${c.file}.dq`)))).tensors.get("weight")!;
      const mine = expected.get(c.file)!;
      expect(py.shape).toEqual(mine.shape);
      expect(hex(castFromNumbers("bf16", mine.data as Float32Array, mine.shape).bytes())).toBe(hex(py.bytes()));
    }
  });
});
