import { DIV, FP8_DECODE, FP8_ROUND, params } from "./wgsl.js";

// WGSL of attention and of the KV cache: causal attention over an f32 cache or over a quantized one (the codes of
// @llmq/kv-cache's static fp8 / int formats, dequantized while attention reads them), and the kernels that write and
// read such a cache. The quantized kernels share one qparams buffer per layer: [k scale, v scale, k zero point,
// v zero point] × kvHeads f32 (a per-tensor scale repeated over the heads), and one flags word: bit 0 fp8 codes (else
// int codes, one signed byte each), bit 1 zero points.

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

/**
 * A cached value from its code, as @llmq/kv-cache decodes it (the js backend's lutDequant): f32(code · s), or
 * f32(f32(code − z) · s) with zero points; the code is an fp8 e4m3fn value or a signed byte.
 */
const KV_DEQUANT = `${FP8_DECODE}
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
fn kAt(j: u32, g: u32, i: u32) -> f32 { let e = (j * p.d + g) * p.e + i; return deq(codeAt(kc[e / 4u], e), qp[g], qp[2u * p.d + g], p.h); }
fn vAt(j: u32, g: u32, i: u32) -> f32 { let e = (j * p.d + g) * p.e + i; return deq(codeAt(vc[e / 4u], e), qp[p.d + g], qp[3u * p.d + g], p.h); }`,
);

/**
 * Writes T new rows x [T, n] (n = kvHeads · headDim) of keys (half 0) or values (half 1) as codes at positions
 * past…: compressed-tensors' quantize as @llmq/schemes computes it in f32: y = x / s (IEEE division, DIV), + z with
 * zero points, clamped to [qMin, qMax], rounded half to even (int) or to the fp8 grid; stored as the code's byte. One
 * invocation per u32 word of the code array (the bytes of other positions in a shared word are kept).
 * a=T b=past c=n d=headDim e=flags f=half g=qMin bits h=qMax bits.
 */
export const KV_QUANTIZE = `${params(3)}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> codes: array<u32>;
@group(0) @binding(2) var<storage, read> qp: array<f32>;
${DIV}
${FP8_ROUND}
fn fp8Code(y: f32) -> u32 {
  let a = abs(fp8(y));
  let sign = (bitcast<u32>(y) >> 24u) & 0x80u;
  if (a < 0.015625) { return sign | u32(a * 512.0); }
  let b = bitcast<u32>(a);
  return sign | (((b >> 23u) - 120u) << 3u) | ((b >> 20u) & 7u);
}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let lo = p.b * p.c;
  let hi = (p.b + p.a) * p.c;
  let w = lo / 4u + id.x + id.y * 65535u * 64u;
  if (w * 4u >= hi) { return; }
  let heads = p.c / p.d;
  var word = codes[w];
  for (var b = 0u; b < 4u; b++) {
    let e = w * 4u + b;
    if (e < lo || e >= hi) { continue; }
    let g = ((e - lo) % p.c) / p.d;
    var y = div(x[e - lo], qp[p.f * heads + g]);
    if ((p.e & 2u) != 0u) { y = y + qp[(2u + p.f) * heads + g]; }
    y = clamp(y, bitcast<f32>(p.g), bitcast<f32>(p.h));
    var code = u32(i32(round(y))) & 255u;
    if ((p.e & 1u) != 0u) { code = fp8Code(y); }
    word = (word & ~(255u << (b * 8u))) | (code << (b * 8u));
  }
  codes[w] = word;
}`;

/** The f32 values of `rows` cached rows [rows, n] of keys (half 0) or values (half 1). a=rows b=n c=headDim e=flags f=half. */
export const KV_DEQUANTIZE = `${params(3)}
@group(0) @binding(0) var<storage, read> codes: array<u32>;
@group(0) @binding(1) var<storage, read> qp: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${KV_DEQUANT}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let e = id.x + id.y * 65535u * 64u;
  if (e >= p.a * p.b) { return; }
  let heads = p.b / p.c;
  let g = (e % p.b) / p.c;
  y[e] = deq(codeAt(codes[e / 4u], e), qp[p.f * heads + g], qp[(2u + p.f) * heads + g], p.e);
}`;
