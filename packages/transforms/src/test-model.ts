import type { ModelInfo, ModuleInfo } from "@llmq/observers";
import * as E from "fp-ts/lib/Either.js";

// A Llama-shaped ModelInfo for unit tests (no weights): `layers` decoder layers with the Llama linears and norms.

const LINEARS = (h: number, q: number, kv: number, i: number): ReadonlyArray<readonly [string, number, number]> => [
  ["self_attn.q_proj", q, h],
  ["self_attn.k_proj", kv, h],
  ["self_attn.v_proj", kv, h],
  ["self_attn.o_proj", h, q],
  ["mlp.gate_proj", i, h],
  ["mlp.up_proj", i, h],
  ["mlp.down_proj", h, i],
];

export const llamaInfo = (layers: number, opts: { hidden?: number; kv?: number; intermediate?: number } = {}): ModelInfo => {
  const h = opts.hidden ?? 8;
  const linears: ModuleInfo[] = [];
  for (let l = 0; l < layers; l++)
    for (const [local, out, inF] of LINEARS(h, h, opts.kv ?? h, opts.intermediate ?? 2 * h))
      linears.push({ name: `model.layers.${l}.${local}`, layer: l, className: "Linear", inFeatures: inF, outFeatures: out });
  return {
    linears,
    numLayers: layers,
    hasTensor: () => true,
    submodules: { inputOf: (m) => (m === "self_attn" ? "self_attn.q_proj" : m === "mlp" ? "mlp.gate_proj" : m.includes("_proj") ? m : null), forward: () => E.left("no forward in this test model") },
    architecture: {
      layerPrefix: (i) => `model.layers.${i}.`,
      sharedInputs: [
        ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
        ["mlp.gate_proj", "mlp.up_proj"],
      ],
      fusedGroups: [],
      layerNorms: ["input_layernorm", "post_attention_layernorm"],
      normMappings: [
        { norm: "input_layernorm", linears: ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"] },
        { norm: "post_attention_layernorm", linears: ["mlp.gate_proj", "mlp.up_proj"] },
      ],
      linearMappings: [
        { from: "self_attn.v_proj", to: ["self_attn.o_proj"] },
        { from: "mlp.up_proj", to: ["mlp.down_proj"] },
      ],
    },
  };
};
