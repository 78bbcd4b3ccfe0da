// WGSL sources of the kernels. Every kernel reads its sizes from a uniform block of eight u32 (f32 values travel as
// their bits). Each definition matches a reference in @llmq/tensor's js backend or @llmq/models' forward (see
// gpu-kernels.ts); the comments say where the GPU order of operations differs.

const PARAMS = "struct P { a: u32, b: u32, c: u32, d: u32, e: u32, f: u32, g: u32, h: u32 }\n@group(0) @binding(BINDING) var<uniform> p: P;\n";
const params = (binding: number): string => PARAMS.replace("BINDING", String(binding));

/**
 * y[t, n] = Σ_k x[t, k] · w(n, k) with w dequantized from compressed-tensors' pack-quantized layout: row n holds
 * `words` u32 words, element k in bits [(k mod per)·bits, …) of word ⌊k / per⌋ offset by 2^(bits−1) (per = 32 / bits),
 * w = f32(q − zp) · scale[n, ⌊k / group⌋], rounded to bf16 when the checkpoint's scales are bf16 (as decompression
 * casts to the scale dtype). a=T b=N c=K d=words e=group f=bits g=bf16 h=groups. Zero points: binding 3 (0 if none).
 */
export const MATMUL_PACKED = `${params(5)}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> s: array<f32>;
@group(0) @binding(3) var<storage, read> zp: array<i32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
fn bf16(v: f32) -> f32 {
  let u = bitcast<u32>(v);
  return bitcast<f32>((u + 0x7fffu + ((u >> 16u) & 1u)) & 0xffff0000u);
}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let n = id.x;
  let t = id.y;
  if (n >= p.b || t >= p.a) { return; }
  let per = 32u / p.f;
  let mask = (1u << p.f) - 1u;
  let half = i32(1u << (p.f - 1u));
  var acc = 0.0;
  for (var k = 0u; k < p.c; k++) {
    let g = n * p.h + k / p.e;
    let q = i32((w[n * p.d + k / per] >> ((k % per) * p.f)) & mask) - half - zp[g];
    var wv = f32(q) * s[g];
    if (p.g == 1u) { wv = bf16(wv); }
    acc = acc + x[t * p.c + k] * wv;
  }
  y[t * p.b + n] = acc;
}`;

/** y[t, n] = Σ_k x[t, k] · w[n, k] (an unquantized linear, e.g. the ignored lm_head). a=T b=N c=K. */
export const MATMUL_DENSE = `${params(3)}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let n = id.x;
  let t = id.y;
  if (n >= p.b || t >= p.a) { return; }
  var acc = 0.0;
  for (var k = 0u; k < p.c; k++) { acc = acc + x[t * p.c + k] * w[n * p.c + k]; }
  y[t * p.b + n] = acc;
}`;

/** Llama RMSNorm per row: w · (x · 1/√(mean(x²) + eps)); the sum of squares is f32 here (f64 in the reference). a=rows b=H c=eps bits. */
export const RMS_NORM = `${params(3)}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let r = id.x;
  if (r >= p.a) { return; }
  var ss = 0.0;
  for (var j = 0u; j < p.b; j++) { let v = x[r * p.b + j]; ss = ss + v * v; }
  let inv = 1.0 / sqrt(ss / f32(p.b) + bitcast<f32>(p.c));
  for (var j = 0u; j < p.b; j++) { y[r * p.b + j] = w[j] * (x[r * p.b + j] * inv); }
}`;

/** Rotate-half RoPE in place on x [T, heads·dim] with cos/sin [T, dim/2]. a=T b=heads c=dim. */
export const ROPE = `${params(3)}
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> cs: array<f32>;
@group(0) @binding(2) var<storage, read> sn: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let half = p.c / 2u;
  let i = id.x;
  let th = id.y;
  if (i >= half || th >= p.a * p.b) { return; }
  let t = th / p.b;
  let o = th * p.c;
  let x1 = x[o + i];
  let x2 = x[o + half + i];
  let c = cs[t * half + i];
  let s = sn[t * half + i];
  x[o + i] = x1 * c - x2 * s;
  x[o + half + i] = x2 * c + x1 * s;
}`;

/**
 * Causal grouped-query attention of T new tokens after \`past\` cached ones; one invocation per (token, head), three
 * passes over the keys (max, Σexp, weighted values). a=T b=past c=heads d=kvHeads e=headDim f=window g=scale bits.
 */
export const CAUSAL_ATTENTION = `${params(4)}
@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;
fn score(t: u32, h: u32, g: u32, j: u32) -> f32 {
  var acc = 0.0;
  for (var i = 0u; i < p.e; i++) { acc = acc + q[(t * p.c + h) * p.e + i] * k[(j * p.d + g) * p.e + i]; }
  return acc * bitcast<f32>(p.g);
}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let h = id.x;
  let t = id.y;
  if (h >= p.c || t >= p.a) { return; }
  let g = h / (p.c / p.d);
  let hi = p.b + t;
  var lo = 0u;
  if (p.f != 0u && hi + 1u > p.f) { lo = hi + 1u - p.f; }
  var mx = score(t, h, g, lo);
  for (var j = lo + 1u; j <= hi; j++) { mx = max(mx, score(t, h, g, j)); }
  var sum = 0.0;
  for (var j = lo; j <= hi; j++) { sum = sum + exp(score(t, h, g, j) - mx); }
  let inv = 1.0 / sum;
  for (var i = 0u; i < p.e; i++) { o[(t * p.c + h) * p.e + i] = 0.0; }
  for (var j = lo; j <= hi; j++) {
    let pj = exp(score(t, h, g, j) - mx) * inv;
    for (var i = 0u; i < p.e; i++) { o[(t * p.c + h) * p.e + i] = o[(t * p.c + h) * p.e + i] + pj * v[(j * p.d + g) * p.e + i]; }
  }
}`;

/** out = (g / (1 + exp(−g))) · u elementwise. a=n. */
export const SILU_MUL = `${params(3)}
@group(0) @binding(0) var<storage, read> gate: array<f32>;
@group(0) @binding(1) var<storage, read> up: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x + id.y * 65535u * 64u;
  if (i >= p.a) { return; }
  let g = gate[i];
  o[i] = (g / (1.0 + exp(-g))) * up[i];
}`;

/** a += b elementwise (the residual stream). a=n. */
export const ADD = `${params(2)}
@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x + id.y * 65535u * 64u;
  if (i >= p.a) { return; }
  a[i] = a[i] + b[i];
}`;

/** Index of the largest of n values starting at row·n (the first of equal maxima), as greedy decoding picks. a=n b=row. */
export const ARGMAX = `${params(2)}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> o: array<u32>;
@compute @workgroup_size(1)
fn main() {
  let base = p.b * p.a;
  var best = 0u;
  for (var i = 1u; i < p.a; i++) { if (x[base + i] > x[base + best]) { best = i; } }
  o[0] = best;
}`;

/**
 * Dynamic per-token symmetric int8 fake quantization of x [T, K] in place of a W8A8 linear's input, as
 * compressed-tensors computes it in f32: s = amax / 127.5 (2^−23 when 0), x ← round_half_even(clamp(x / s, −128, 127)) · s.
 * Both divisions are corrected with an fma residual so they round like IEEE division (WGSL allows 2.5 ulp). a=T b=K.
 */
export const QUANTIZE_INPUT_INT8 = `${params(2)}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
fn div(a: f32, b: f32) -> f32 {
  let q = a / b;
  return q + fma(-q, b, a) / b;
}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let t = id.x;
  if (t >= p.a) { return; }
  var amax = 0.0;
  for (var k = 0u; k < p.b; k++) { amax = max(amax, abs(x[t * p.b + k])); }
  var s = div(amax, 127.5);
  if (s == 0.0) { s = 1.1920929e-7; }
  for (var k = 0u; k < p.b; k++) { y[t * p.b + k] = round(clamp(div(x[t * p.b + k], s), -128.0, 127.0)) * s; }
}`;
