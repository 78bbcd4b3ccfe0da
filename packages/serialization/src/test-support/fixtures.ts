import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { DType } from "@llmq/tensor";

/** packages/serialization/fixtures (made by tools/gen_serialization_fixtures.py). */
export const FIXTURES = fileURLToPath(new URL("../../fixtures/", import.meta.url));

export const readJson = <T>(rel: string): T => JSON.parse(readFileSync(`${FIXTURES}${rel}`, "utf8")) as T;

export const TORCH_TO_LLMQ: Readonly<Record<string, DType>> = {
  float64: "f64",
  float32: "f32",
  float16: "f16",
  bfloat16: "bf16",
  float8_e4m3fn: "f8_e4m3fn",
  float8_e5m2: "f8_e5m2",
  int64: "i64",
  int32: "i32",
  int16: "i16",
  int8: "i8",
  uint8: "u8",
  bool: "bool",
};

export const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
