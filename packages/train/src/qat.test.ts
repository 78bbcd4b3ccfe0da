import { convertLlama2c, forwardLogits, memoryWeightSource, modelFromSource } from "@llmq/models";
import { computeDynamicQParams, decodeQuantizationArgs, fakeQuantize, rtnQParams } from "@llmq/schemes";
import { type Tensor, activeBackend, f32, nativeAddon, setBackend, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { lastValueFrom, from, toArray } from "rxjs";
import { describe, expect, it } from "vitest";
import { ADAMW_DEFAULTS, adamWInit } from "./adamw.js";
import { crossEntropy } from "./losses.js";
import { type FakeQuantParams, fakeQuantInputSTE, fakeQuantSTE } from "./fake-quant-ste.js";
import { LAYER_LINEARS, llamaTrainLogits } from "./llama-train-forward.js";
import { backward, newTape, param, record } from "./tape.js";
import { type TrainEvent, epochBatches, train$ } from "./train-loop.js";
import { qatModifier } from "./train-modifier.js";
import type { TrainState } from "./train-state.js";
import { trainWeights } from "./train-weights.js";

const FX = new URL("../../../fixtures/stories260K/", import.meta.url).pathname;

const right = <A>(e: E.Either<unknown, A>): A => {
  if (E.isLeft(e)) throw new Error(JSON.stringify(e.left));
  return e.right;
};
const argsOf = (o: object) => right(decodeQuantizationArgs({ num_bits: 4, type: "int", symmetric: true, ...o }));

const stories = async () => right(await convertLlama2c(`${FX}stories260K.bin`)());
const windowOf = (n: number, seed: number): Int32Array => Int32Array.from({ length: n }, (_, i) => 3 + ((seed * 131 + i * 97 + ((i * i) % 17)) % 500));

/** RTN qparams of every decoder linear: W4 g32, down_proj (172 inputs) channel-wise. */
const qparams = (tensors: ReadonlyMap<string, Tensor>, layers: number): Map<string, FakeQuantParams> => {
  const out = new Map<string, FakeQuantParams>();
  for (let i = 0; i < layers; i++)
    for (const m of LAYER_LINEARS) {
      const name = `model.layers.${i}.${m}`;
      const args = m === "mlp.down_proj" ? argsOf({ strategy: "channel" }) : argsOf({ strategy: "group", group_size: 32 });
      const q = right(rtnQParams(tensors.get(`${name}.weight`)!, args));
      out.set(name, { args, scale: q.scale, zeroPoint: null, gIdx: null });
    }
  return out;
};

describe("the training forward on stories260K", () => {
  it("gives @llmq/models' logits (f32, same weights)", async () => {
    const m = await stories();
    const ids = windowOf(40, 1);
    const w = right(trainWeights(m.config, m.tensors, () => false));
    const tape = newTape();
    const got = right(llamaTrainLogits(tape, m.config, w, ids, { modules: new Map(), active: false }));
    expect(tape.steps.length).toBe(0); // nothing needs a gradient: nothing is recorded
    const h = right(modelFromSource("mem", m.configJson, memoryWeightSource(m.tensors)));
    const ref = right(await forwardLogits(h, ids)());
    let worst = 0;
    for (let i = 0; i < ref.data.length; i++) worst = Math.max(worst, Math.abs(got.data[i]! - ref.data[i]!));
    expect(worst).toBeLessThan(2e-4);
  });
});

describe("fake quantization with the clipped STE", () => {
  it("forwards compressed-tensors' fake_quantize and passes gradients only inside the range", () => {
    const args = argsOf({ strategy: "group", group_size: 2 });
    const w = f32([0.1, -0.3, 2.0, 0.05, -0.2, 0.4, 0.3, -0.1], [2, 4]);
    const scale = f32([0.05, 0.1, 0.05, 0.05], [2, 2]); // 2.0 / 0.1 = 20 > 7: clamped
    const p: FakeQuantParams = { args, scale, zeroPoint: null, gIdx: null };
    const tape = newTape();
    const x = param(Float32Array.from(w.data), w.shape);
    const y = right(fakeQuantSTE(tape, x, p));
    expect(Array.from(y.data)).toEqual(Array.from(toFloat32(right(fakeQuantize(w, scale, null, args))).data));
    const loss = record(tape, [y], Float32Array.of(Array.from(y.data).reduce((a, b) => a + b, 0)), [], (_, g) => {
      y.grad = new Float32Array(y.data.length).fill(g[0]!);
    });
    backward(tape, loss);
    // 2.0/0.1 = 20 and 0.4/0.05 = 8 exceed qmax 7 (clamped); −0.3/0.05 = −6 and the rest lie inside [−8, 7]
    expect(Array.from(x.grad!)).toEqual([1, 1, 0, 1, 1, 0, 1, 1]);
  });
});

describe("dynamic input-activation fake quantization", () => {
  it("forwards compressed-tensors' per-token int8 fake_quantize of [1, T, in]; the STE clips each token's absmax", () => {
    const args = right(decodeQuantizationArgs({ num_bits: 8, type: "int", symmetric: true, strategy: "token", dynamic: true }));
    const x = f32([0.5, -1.25, 3.0, 0.01, -0.02, 0.03], [2, 3]);
    const x3 = f32(Array.from(x.data), [1, 2, 3]);
    const qp = right(computeDynamicQParams(x3, args));
    const want = toFloat32(right(fakeQuantize(x3, qp.scale, null, args))).data;
    const tape = newTape();
    const v = param(Float32Array.from(x.data), x.shape);
    const y = right(fakeQuantInputSTE(tape, v, args));
    expect(Array.from(y.data)).toEqual(Array.from(want));
    expect(y.data[1]).not.toBe(x.data[1]); // it does quantize
    const loss = record(tape, [y], Float32Array.of(0), [], (_, g) => {
      y.grad = Float32Array.from(y.data, () => g[0]! * 2);
    });
    backward(tape, loss);
    // s = absmax / 127.5, so a token's absmax lands on 127.5, which rounds (half to even) to 128 > 127: clamped, as
    // torch's fake_quantize mask has it; the others pass.
    expect(Array.from(v.grad!)).toEqual([2, 2, 0, 2, 2, 0]);
  });
});

describe("QAT loop", () => {
  const setup = async (start: number) => {
    const m = await stories();
    const cfg = { ...m.config, num_hidden_layers: 2 };
    const w = right(trainWeights(cfg, m.tensors, (n) => n.includes(".layers.")));
    const teacherW = right(trainWeights(cfg, m.tensors, () => false));
    const plan = { modules: new Map(), active: false };
    const teacher = (ids: Int32Array) => right(llamaTrainLogits(newTape(), cfg, teacherW, ids, plan)).data as Float32Array;
    const s0: TrainState = { epoch: 0, step: 0, weights: w, optimizer: adamWInit(new Map([...w].filter(([, v]) => v.needsGrad))), loss: null, quant: plan, teacher };
    const windows = [windowOf(33, 1), windowOf(33, 2), windowOf(33, 3), windowOf(33, 4)];
    const qat = qatModifier(qparams(m.tensors, 2), { start });
    const opts = { config: cfg, optimizer: { ...ADAMW_DEFAULTS, lr: 2e-4, weightDecay: 0 }, schedule: { name: "constant" as const, warmupSteps: 0, totalSteps: 8 }, maxGradNorm: 1, distillWeight: 1 };
    return lastValueFrom(train$(from(epochBatches(windows, 8, 4, 7)), s0, [qat], opts).pipe(toArray()));
  };

  it("emits LC's training events in order and lowers the distillation loss of the fake-quantized model", async () => {
    const out = (await setup(0)).map(right) as TrainEvent[];
    const events = out.filter((e) => e._tag === "Event").map((e) => (e._tag === "Event" ? e.event.type : ""));
    expect(events.slice(0, 5)).toEqual(["batch_start", "loss_calculated", "optim_pre_step", "optim_post_step", "batch_end"]);
    const steps = out.flatMap((e) => (e._tag === "Step" ? [e] : []));
    expect(steps.length).toBe(8);
    expect(steps.every((s) => s.state.quant.active)).toBe(true);
    expect(steps[0]!.loss).toBeGreaterThan(0);
    const first = (steps[0]!.loss + steps[1]!.loss) / 2;
    const last = (steps[6]!.loss + steps[7]!.loss) / 2;
    expect(last).toBeLessThan(0.8 * first);
  });

  it("honours the modifier's start epoch: the first epochs run unquantized (distillation loss 0 at step 0)", async () => {
    const steps = (await setup(2)).map(right).flatMap((e) => (e._tag === "Step" ? [e] : []));
    expect(steps.map((s) => s.state.quant.active)).toEqual([false, false, true, true, true, true, true, true]);
    expect(steps[0]!.loss).toBeCloseTo(0, 6);
  });
});

describe("backends", () => {
  it.skipIf(nativeAddon() === null)("native GEMMs give the js twin's gradients of a fake-quantized stories260K step (f32)", async () => {
    const m = await stories();
    const ids = windowOf(65, 3);
    const grads = (backend: "js" | "native") => {
      setBackend(backend);
      try {
        expect(activeBackend()).toBe(backend);
        const w = right(trainWeights(m.config, m.tensors, (n) => n.includes(".layers.")));
        const tape = newTape();
        const logits = right(llamaTrainLogits(tape, m.config, w, ids.subarray(0, 64), { modules: qparams(m.tensors, m.config.num_hidden_layers), active: true }));
        backward(tape, crossEntropy(tape, logits, ids.subarray(1)));
        return w;
      } finally {
        setBackend(undefined);
      }
    };
    const [js, native] = [grads("js"), grads("native")];
    let worst = 0;
    let scale = 0;
    for (const [name, v] of js) {
      if (!v.needsGrad) continue;
      const g = native.get(name)!.grad!;
      for (let i = 0; i < g.length; i++) {
        worst = Math.max(worst, Math.abs(g[i]! - v.grad![i]!));
        scale = Math.max(scale, Math.abs(v.grad![i]!));
      }
    }
    expect(scale).toBeGreaterThan(0);
    expect(worst).toBeLessThan(1e-4 * scale);
  });
});
