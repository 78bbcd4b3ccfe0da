import { DIV, FLAT_ID, FP8_DECODE, FP8_ROUND, params } from "./wgsl.js";

// WGSL of attention and of the KV cache: causal attention over an f32 cache, an f16 one, or a quantized one (the codes
// of @llmq/kv-cache's static fp8 / int formats or of its dynamic fp8 / int8 ones, dequantized while attention reads
// them), and the kernels that write and read such caches. The quantized kernels share one qparams buffer per layer:
// static, [k scale, v scale, k zero point, v zero point] × kvHeads f32 (a per-tensor scale repeated over the heads);
// dynamic, [position, k | v, kvHeads] f32 scales, written by KV_SCALES as tokens are appended; and one flags word:
// bit 0 fp8 codes (else int codes, one signed byte each), bit 1 zero points, bit 2 dynamic (per-token) scales.

/**
 * Causal grouped-query attention of T new tokens after `past` cached ones; one invocation per (token, head), three
 * passes over the keys (max, Σexp, weighted values). Keys and values are read through kAt / vAt (j position, g KV
 * head, i channel), which `access` defines with its bindings 1…. a=T b=past c=heads d=kvHeads e=headDim f=window
 * g=scale bits h=(kernel's own).
 */
const attention = (outBinding: number, access: string): string => `${params(outBinding + 1)}
@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(${outBinding}) var<storage, read_write> o: array<f32>;
${access}
fn score(t: u32, h: u32, g: u32, j: u32) -> f32 {
  var acc = 0.0;
  for (var i = 0u; i < p.e; i++) { acc = acc + q[(t * p.c + h) * p.e + i] * kAt(j, g, i); }
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
    for (var i = 0u; i < p.e; i++) { o[(t * p.c + h) * p.e + i] = o[(t * p.c + h) * p.e + i] + pj * vAt(j, g, i); }
  }
}`;

/** Attention over an f32 cache: k, v [positions, kvHeads · headDim]. */
export const CAUSAL_ATTENTION = attention(
  3,
  `@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
fn kAt(j: u32, g: u32, i: u32) -> f32 { return k[(j * p.d + g) * p.e + i]; }
fn vAt(j: u32, g: u32, i: u32) -> f32 { return v[(j * p.d + g) * p.e + i]; }`,
);

/** The index in the qparams of the scale of keys (half 0) or values (half 1) at position j, KV head g. */
const SCALE_AT = `fn scaleAt(half: u32, j: u32, g: u32, heads: u32, flags: u32) -> u32 {
  if ((flags & 4u) != 0u) { return (2u * j + half) * heads + g; }
  return half * heads + g;
}`;

/**
 * A cached value from its code, as @llmq/kv-cache decodes it (the js backend's lutDequant): f32(code · s), or
 * f32(f32(code − z) · s) with zero points; the code is an fp8 e4m3fn value or a signed byte.
 */
const KV_DEQUANT = `${FP8_DECODE}
${SCALE_AT}
fn codeAt(w: u32, e: u32) -> u32 { return (w >> ((e % 4u) * 8u)) & 255u; }
fn deq(code: u32, s: f32, z: f32, flags: u32) -> f32 {
  var c = f32(i32(code << 24u) >> 24u);
  if ((flags & 1u) != 0u) { c = fp8(code); }
  if ((flags & 2u) != 0u) { return (c - z) * s; }
  return c * s;
}`;

/**
 * Attention over a quantized cache: kc, vc the codes [positions, kvHeads · headDim] four per u32, qp the layer's
 * qparams. h=flags.
 */
export const CAUSAL_ATTENTION_QUANTIZED_KV = attention(
  4,
  `@group(0) @binding(1) var<storage, read> kc: array<u32>;
@group(0) @binding(2) var<storage, read> vc: array<u32>;
@group(0) @binding(3) var<storage, read> qp: array<f32>;
${KV_DEQUANT}
fn kAt(j: u32, g: u32, i: u32) -> f32 { let e = (j * p.d + g) * p.e + i; return deq(codeAt(kc[e / 4u], e), qp[scaleAt(0u, j, g, p.d, p.h)], qp[2u * p.d + g], p.h); }
fn vAt(j: u32, g: u32, i: u32) -> f32 { let e = (j * p.d + g) * p.e + i; return deq(codeAt(vc[e / 4u], e), qp[scaleAt(1u, j, g, p.d, p.h)], qp[3u * p.d + g], p.h); }`,
);

/**
 * The main of a kernel appending rows x [T, n] at positions past… to an array of u32 words of `per` lanes (32 / per
 * bits each): one invocation per word, so a word shared with earlier positions keeps their lanes; lane(r) gives the
 * bits of element r of the new rows. a=T b=past c=n.
 */
const appendLanes = (per: 2 | 4): string => `@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let lo = p.b * p.c;
  let hi = (p.b + p.a) * p.c;
  let w = lo / ${per}u + ${FLAT_ID};
  if (w * ${per}u >= hi) { return; }
  let bits = ${32 / per}u;
  let mask = (1u << bits) - 1u;
  var word = out[w];
  for (var b = 0u; b < ${per}u; b++) {
    let e = w * ${per}u + b;
    if (e < lo || e >= hi) { continue; }
    word = (word & ~(mask << (b * bits))) | (lane(e - lo) << (b * bits));
  }
  out[w] = word;
}`;

/**
 * Writes T new rows x [T, n] (n = kvHeads · headDim) of keys (half 0) or values (half 1) as codes at positions
 * past…: compressed-tensors' quantize as @llmq/schemes computes it in f32: y = x / s (IEEE division, DIV), + z with
 * zero points, clamped to [qMin, qMax], rounded half to even (int) or to the fp8 grid; stored as the code's byte. One
 * invocation per u32 word of the code array (the bytes of other positions in a shared word are kept).
 * a=T b=past c=n d=headDim e=flags f=half g=qMin bits h=qMax bits.
 */
export const KV_QUANTIZE = `${params(3)}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read> qp: array<f32>;
${DIV}
${FP8_ROUND}
${SCALE_AT}
fn fp8Code(y: f32) -> u32 {
  let a = abs(fp8(y));
  let sign = (bitcast<u32>(y) >> 24u) & 0x80u;
  if (a < 0.015625) { return sign | u32(a * 512.0); }
  let b = bitcast<u32>(a);
  return sign | (((b >> 23u) - 120u) << 3u) | ((b >> 20u) & 7u);
}
fn lane(r: u32) -> u32 {
  let g = (r % p.c) / p.d;
  let heads = p.c / p.d;
  var y = div(x[r], qp[scaleAt(p.f, p.b + r / p.c, g, heads, p.e)]);
  if ((p.e & 2u) != 0u) { y = y + qp[(2u + p.f) * heads + g]; }
  y = clamp(y, bitcast<f32>(p.g), bitcast<f32>(p.h));
  if ((p.e & 1u) != 0u) { return fp8Code(y); }
  return u32(i32(round(y))) & 255u;
}
${appendLanes(4)}`;

/** The f32 values of `rows` cached rows [rows, n] of keys (half 0) or values (half 1). a=rows b=n c=headDim e=flags f=half. */
export const KV_DEQUANTIZE = `${params(3)}
@group(0) @binding(0) var<storage, read> codes: array<u32>;
@group(0) @binding(1) var<storage, read> qp: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${KV_DEQUANT}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let e = ${FLAT_ID};
  if (e >= p.a * p.b) { return; }
  let heads = p.b / p.c;
  let g = (e % p.b) / p.c;
  y[e] = deq(codeAt(codes[e / 4u], e), qp[scaleAt(p.f, e / p.b, g, heads, p.e)], qp[(2u + p.f) * heads + g], p.e);
}`;

/**
 * @llmq/kv-cache's dynamic scales of T new rows x [T, n] of keys (half 0) or values (half 1), one per (token, KV head),
 * as @llmq/schemes' computeDynamicQParams computes a symmetric per-token scale from f32 statistics:
 * s = f32(amax / ((qMax − qMin) / 2)) (IEEE division, DIV), amax = max |x| over the head's channels; a zero scale
 * becomes f32's eps. Written to the dynamic qparams at [past + t, half, g]. a=T b=past c=n d=headDim e=half
 * f=(qMax − qMin) / 2 bits g=eps bits.
 */
export const KV_SCALES = `${params(2)}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> qp: array<f32>;
${DIV}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let heads = p.c / p.d;
  let r = ${FLAT_ID};
  if (r >= p.a * heads) { return; }
  let t = r / heads;
  let g = r % heads;
  var amax = 0.0;
  for (var i = 0u; i < p.d; i++) { amax = max(amax, abs(x[t * p.c + g * p.d + i])); }
  var s = div(amax, bitcast<f32>(p.f));
  if (s == 0.0) { s = bitcast<f32>(p.g); }
  qp[(2u * (p.b + t) + p.e) * heads + g] = s;
}`;

/**
 * f32 ↔ f16 bits as @llmq/tensor's f16FromNumber / f16ToNumber: nearest with ties to even, subnormals on the 2^−24
 * grid, ≥ 65520 to infinity, NaN to 0x7e00; every f16 is exact in f32.
 */
const F16 = `fn f16Bits(v: f32) -> u32 {
  let u = bitcast<u32>(v);
  let sign = (u >> 16u) & 0x8000u;
  let a = u & 0x7fffffffu;
  if (a > 0x7f800000u) { return 0x7e00u; }
  if (a >= 0x477ff000u) { return sign | 0x7c00u; }
  if (a < 0x38800000u) { return sign | u32(round(bitcast<f32>(a) * 16777216.0)); }
  return sign | ((a + 0xfffu + ((a >> 13u) & 1u) - 0x38000000u) >> 13u);
}
fn f16Value(h: u32) -> f32 {
  let e = (h >> 10u) & 31u;
  let m = h & 1023u;
  var v = f32(m) * 5.9604644775390625e-8;
  if (e == 31u) { v = bitcast<f32>(select(0x7fc00000u, 0x7f800000u, m == 0u)); }
  else if (e != 0u) { v = bitcast<f32>(((e + 112u) << 23u) | (m << 13u)); }
  return select(v, -v, (h & 0x8000u) != 0u);
}
fn halfAt(w: u32, e: u32) -> f32 { return f16Value((w >> ((e % 2u) * 16u)) & 0xffffu); }`;

/** Attention over an f16 cache: k, v [positions, kvHeads · headDim] two halves per u32. */
export const CAUSAL_ATTENTION_F16_KV = attention(
  3,
  `@group(0) @binding(1) var<storage, read> k: array<u32>;
@group(0) @binding(2) var<storage, read> v: array<u32>;
${F16}
fn kAt(j: u32, g: u32, i: u32) -> f32 { let e = (j * p.d + g) * p.e + i; return halfAt(k[e / 2u], e); }
fn vAt(j: u32, g: u32, i: u32) -> f32 { let e = (j * p.d + g) * p.e + i; return halfAt(v[e / 2u], e); }`,
);

/**
 * Writes T new rows x [T, n] as f16 at positions past… (`llmq generate --kv-cache f16`); one invocation per u32 word
 * (the other position's half in a shared word is kept). a=T b=past c=n.
 */
export const KV_TO_F16 = `${params(2)}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
${F16}
fn lane(r: u32) -> u32 { return f16Bits(x[r]); }
${appendLanes(2)}`;

/** The f32 values of the first n cached f16 values. a=n. */
export const KV_FROM_F16 = `${params(2)}
@group(0) @binding(0) var<storage, read> halves: array<u32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
${F16}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let e = ${FLAT_ID};
  if (e >= p.a) { return; }
  y[e] = halfAt(halves[e / 2u], e);
}`;
