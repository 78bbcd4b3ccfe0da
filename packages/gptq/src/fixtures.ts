import { readFileSync } from "node:fs";
import { type QuantizationArgs, decodeQuantizationArgs } from "@llmq/schemes";
import { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";

// Test-only loader for packages/gptq/fixtures (written by tools/gen_gptq_fixtures.py). A minimal safetensors reader
// (header length, JSON header, raw LE data) so the tests do not depend on @llmq/serialization (not a dependency).

export interface FixtureCase {
  readonly name: string;
  readonly problem: string;
  /** Tensor names of the weight (f32, or bf16 for a bf16 model) and of the normalised Hessian. */
  readonly weight: string;
  readonly hessian: string;
  /** Decoded by @llmq/schemes from compressed-tensors' own `model_dump_json`. */
  readonly args: QuantizationArgs;
  readonly observer: string;
  readonly block_size: number;
  readonly dampening_frac: number;
  readonly loss: number;
  readonly used_rtn_fallback: boolean;
}

export interface Fixtures {
  readonly cases: ReadonlyArray<FixtureCase>;
  readonly accumulation: { readonly inputs: ReadonlyArray<string>; readonly num_samples: number };
  readonly tensor: (name: string) => Tensor;
  readonly f32: (name: string) => Tensor<"f32">;
  readonly has: (name: string) => boolean;
}

const DTYPES: Record<string, "f32" | "i8" | "f8_e4m3fn" | "i32" | "bf16"> = {
  F32: "f32",
  I8: "i8",
  F8_E4M3: "f8_e4m3fn",
  I32: "i32",
  BF16: "bf16",
};

export const loadFixtures = (dir = new URL("../fixtures/", import.meta.url)): Fixtures => {
  const raw = readFileSync(new URL("gptq.safetensors", dir));
  const meta = JSON.parse(readFileSync(new URL("gptq.json", dir), "utf8"));
  const n = Number(raw.readBigUInt64LE(0));
  const header = JSON.parse(raw.subarray(8, 8 + n).toString("utf8")) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const base = 8 + n;
  const tensor = (name: string): Tensor => {
    const h = header[name];
    if (!h) throw new Error(`fixture tensor ${name} missing`);
    const dtype = DTYPES[h.dtype];
    if (!dtype) throw new Error(`fixture dtype ${h.dtype}`);
    const bytes = raw.subarray(base + h.data_offsets[0], base + h.data_offsets[1]);
    const copy = new Uint8Array(bytes.length);
    copy.set(bytes);
    const data =
      dtype === "f32"
        ? new Float32Array(copy.buffer)
        : dtype === "i8"
          ? new Int8Array(copy.buffer)
          : dtype === "i32"
            ? new Int32Array(copy.buffer)
            : dtype === "bf16"
              ? new Uint16Array(copy.buffer)
              : copy;
    return new Tensor(dtype, h.shape, data as never);
  };
  const cases = (meta.cases as Array<Record<string, unknown>>).map((c) => {
    const args = decodeQuantizationArgs(c.args, `${String(c.name)}.args`);
    if (E.isLeft(args)) throw new Error(`fixture args: ${JSON.stringify(args.left)}`);
    return { ...c, args: args.right } as unknown as FixtureCase;
  });
  return {
    cases,
    accumulation: meta.accumulation,
    tensor,
    f32: (name) => tensor(name) as Tensor<"f32">,
    has: (name) => name in header,
  };
};
