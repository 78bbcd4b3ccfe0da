// WGSL sources of the kernels. Every kernel reads its sizes from a uniform block of eight u32 (f32 values travel as
// their bits). Each definition matches a reference in @llmq/tensor's js backend or @llmq/models' forward (see
// gpu-kernels.ts); the comments say where the GPU order of operations differs.

const PARAMS = "struct P { a: u32, b: u32, c: u32, d: u32, e: u32, f: u32, g: u32, h: u32 }\n@group(0) @binding(BINDING) var<uniform> p: P;\n";
export const params = (binding: number): string => PARAMS.replace("BINDING", String(binding));

/** An elementwise kernel's flat invocation index: gpu-context.ts spills more than 65535 workgroups of 64 along x into y. */
export const FLAT_ID = "id.x + id.y * 65535u * 64u";

/** An f32 rounded to bf16 (nearest, ties to even), as torch casts a dequantized weight to bf16 scales' dtype. */
const BF16 = `fn bf16(v: f32) -> f32 {
  let u = bitcast<u32>(v);
  return bitcast<f32>((u + 0x7fffu + ((u >> 16u) & 1u)) & 0xffff0000u);
}`;

/**
 * An f32 rounded to f16 (nearest, ties to even; below 2^−14 on the subnormal 2^−24 grid; beyond 65504 to ±inf), as
 * torch casts a dequantized weight to f16 scales' dtype; then `toScaleDType(v, d)`: v as it is (d = 0, f32 scales),
 * rounded to bf16 (1) or f16 (2).
 */
const SCALE_DTYPE = `${BF16}
fn f16(v: f32) -> f32 {
  let u = bitcast<u32>(v);
  let e = (u >> 23u) & 255u;
  if (e == 255u) { return v; }
  if (e >= 113u) {
    let r = (u + 0xfffu + ((u >> 13u) & 1u)) & 0xffffe000u;
    return select(bitcast<f32>(r), bitcast<f32>((u & 0x80000000u) | 0x7f800000u), (r & 0x7fffffffu) > 0x477fe000u);
  }
  let m = round(abs(v) * 16777216.0) / 16777216.0;
  return select(m, -m, v < 0.0);
}
fn toScaleDType(v: f32, d: u32) -> f32 {
  if (d == 1u) { return bf16(v); }
  if (d == 2u) { return f16(v); }
  return v;
}`;

/** The pack-quantized matmul; with `gIdx` the group of column k is g_idx[k] (binding 4) instead of ⌊k / group⌋. */
const packedMatmul = (gIdx: boolean): string => `${params(gIdx ? 6 : 5)}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> s: array<f32>;
@group(0) @binding(3) var<storage, read> zp: array<i32>;
${gIdx ? "@group(0) @binding(4) var<storage, read> gi: array<u32>;\n" : ""}@group(0) @binding(${gIdx ? 5 : 4}) var<storage, read_write> y: array<f32>;
${SCALE_DTYPE}
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
    let g = n * p.h + ${gIdx ? "gi[k]" : "k / p.e"};
    let q = i32((w[n * p.d + k / per] >> ((k % per) * p.f)) & mask) - half - zp[g];
    var wv = f32(q) * s[g];
    wv = toScaleDType(wv, p.g);
    acc = acc + x[t * p.c + k] * wv;
  }
  y[t * p.b + n] = acc;
}`;

/**
 * y[t, n] = Σ_k x[t, k] · w(n, k) with w dequantized from compressed-tensors' pack-quantized layout: row n holds
 * `words` u32 words, element k in bits [(k mod per)·bits, …) of word ⌊k / per⌋ offset by 2^(bits−1) (per = 32 / bits),
 * w = f32(q − zp) · scale[n, ⌊k / group⌋], rounded to bf16 / f16 when the checkpoint's scales are (as decompression
 * casts to the scale dtype). a=T b=N c=K d=words e=group f=bits g=scale dtype (SCALE_DTYPE) h=groups. Zero points:
 * binding 3 (0 if none).
 */
export const MATMUL_PACKED = packedMatmul(false);

/**
 * MATMUL_PACKED with activation-ordered groups (GPTQ desc_act / act-order "group"): column k takes the scale and zero
 * point of group g_idx[k] (u32 [K], binding 4), as GPTQ's dequantization reads them. Params as MATMUL_PACKED.
 */
export const MATMUL_PACKED_GIDX = packedMatmul(true);

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

/** a += b elementwise (the residual stream). a=n. */
export const ADD = `${params(2)}
@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = ${FLAT_ID};
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
 * a / b rounded like IEEE division (WGSL allows 2.5 ulp): the quotient corrected by the exact remainder a − q·b, with
 * q·b's rounding error from Dekker's two-product (Veltkamp splits) instead of fma, which WGSL does not require to be
 * fused (SwiftShader's is not: with it the correction moved correctly rounded quotients by an ulp).
 */
export const DIV = `fn twoProductError(a: f32, b: f32, p: f32) -> f32 {
  let ca = 4097.0 * a;
  let ah = ca - (ca - a);
  let al = a - ah;
  let cb = 4097.0 * b;
  let bh = cb - (cb - b);
  let bl = b - bh;
  return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
}
fn div(a0: f32, b0: f32) -> f32 {
  if (abs(b0) > 3.4028234e38) { return a0 / b0; }
  // a huge divisor is scaled by 2^-64 first (exact) so that the Veltkamp split of q·b cannot overflow
  let big = abs(b0) > 1e30;
  let a = select(a0, a0 * 5.421010862427522e-20, big);
  let b = select(b0, b0 * 5.421010862427522e-20, big);
  let q = a / b;
  let qb = q * b;
  let c = ((a - qb) - twoProductError(q, b, qb)) / b;
  return select(q + c, q, c == 0.0); // keeps q's sign when exact (−0 / b)
}`;

/**
 * eˣ rounded to f32 as llmq's CPU kernels round it (fround of @llmq/tensor's expF64): the same reduction (n = rint(x·log₂e),
 * r = x − n·ln2) and degree-13 Taylor polynomial, evaluated in float-float (pairs of f32, ~2⁻⁴⁴ relative, TwoSum and
 * Dekker products: no fma, which WGSL does not require to be fused), then rounded once. It differs from expF64's
 * rounding only where eˣ lies within ~2⁻⁴⁴ of the midpoint between two f32 values. x clamped to [−110, 89] as there.
 */
const EXP_F32 = `fn twoSum(a: f32, b: f32) -> vec2<f32> {
  let s = a + b;
  let bb = s - a;
  return vec2<f32>(s, (a - (s - bb)) + (b - bb));
}
fn fastTwoSum(a: f32, b: f32) -> vec2<f32> {
  let s = a + b;
  return vec2<f32>(s, b - (s - a));
}
fn ffMul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let p = a.x * b.x;
  return fastTwoSum(p, twoProductError(a.x, b.x, p) + (a.x * b.y + a.y * b.x));
}
fn ffAdd(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let s = twoSum(a.x, b.x);
  return fastTwoSum(s.x, s.y + (a.y + b.y));
}
fn expF32(x: f32) -> f32 {
  if (x != x) { return x; }
  let xc = clamp(x, -110.0, 89.0);
  let n = round(xc * 1.4426950216293335);
  // ln2 = c1 + c2 + c3 with c1 of 16 bits: n·c1 is exact and xc − n·c1 too (Sterbenz); n·c2 exactly by Dekker
  let t = xc - n * 0.693145751953125;
  let m2 = n * 1.428606765330187e-06;
  let s = twoSum(t, -m2);
  let r = fastTwoSum(s.x, s.y - twoProductError(n, 1.428606765330187e-06, m2) - n * 5.497923148104107e-14);
  var acc = vec2<f32>(1.6059044372074283e-10, -5.352526511562726e-18);
  acc = ffAdd(ffMul(acc, r), vec2<f32>(2.0876755879584152e-09, 1.1082839147459852e-16));
  acc = ffAdd(ffMul(acc, r), vec2<f32>(2.5052107943679403e-08, 4.4176230446483665e-16));
  acc = ffAdd(ffMul(acc, r), vec2<f32>(2.755731998149713e-07, -7.575112209051195e-15));
  acc = ffAdd(ffMul(acc, r), vec2<f32>(2.7557318844628753e-06, 3.793571224297229e-14));
  acc = ffAdd(ffMul(acc, r), vec2<f32>(2.4801587642286904e-05, -3.40699609366682e-13));
  acc = ffAdd(ffMul(acc, r), vec2<f32>(0.00019841270113829523, -2.725596874933456e-12));
  acc = ffAdd(ffMul(acc, r), vec2<f32>(0.0013888889225199819, -3.3631094437103215e-11));
  acc = ffAdd(ffMul(acc, r), vec2<f32>(0.008333333767950535, -4.34617203337595e-10));
  acc = ffAdd(ffMul(acc, r), vec2<f32>(0.0416666679084301, -1.2417634698280722e-09));
  acc = ffAdd(ffMul(acc, r), vec2<f32>(0.1666666716337204, -4.967053879312289e-09));
  acc = ffAdd(ffMul(acc, r), vec2<f32>(0.5, 0.0));
  acc = ffAdd(ffMul(acc, r), vec2<f32>(1.0, 0.0));
  acc = ffAdd(ffMul(acc, r), vec2<f32>(1.0, 0.0));
  return ldexp(acc.x + acc.y, i32(n));
}`;

/**
 * out = (g / (1 + exp(−g))) · u elementwise, rounded as the js kernel rounds it: fr(fr(g / fr(1 + fr(expF64(−g)))) · u)
 * with EXP_F32 and DIV (IEEE division). a=n.
 */
export const SILU_MUL = `${params(3)}
@group(0) @binding(0) var<storage, read> gate: array<f32>;
@group(0) @binding(1) var<storage, read> up: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
${DIV}
${EXP_F32}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = ${FLAT_ID};
  if (i >= p.a) { return; }
  let g = gate[i];
  let d = 1.0 + expF32(-g);
  o[i] = div(g, d) * up[i];
}`;

/**
 * Dynamic per-token symmetric int8 fake quantization of x [T, K] in place of a W8A8 linear's input, as
 * compressed-tensors computes it in f32: s = amax / 127.5 (2^−23 when 0), x ← round_half_even(clamp(x / s, −128, 127)) · s.
 * Both divisions round like IEEE division (DIV). a=T b=K.
 */
export const QUANTIZE_INPUT_INT8 = `${params(2)}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
${DIV}
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

/** The value of an fp8 e4m3fn code (its low byte): exact in f32; subnormals are m · 2^−9. */
export const FP8_DECODE = `fn fp8(code: u32) -> f32 {
  let e = (code >> 3u) & 15u;
  let m = code & 7u;
  var v = f32(m) * 0.001953125;
  if (e != 0u) { v = bitcast<f32>(((e + 120u) << 23u) | (m << 20u)); }
  return select(v, -v, (code & 0x80u) != 0u);
}`;

/**
 * y[t, n] = Σ_k x[t, k] · w(n, k) with w dequantized from compressed-tensors' float-quantized layout: fp8 e4m3fn codes
 * [N, K] (four per u32, little-endian), w = f32(code) · scale (scale[n] per channel, scale[0] per tensor), rounded to
 * bf16 / f16 when the scales are (decompression casts to the scale dtype). a=T b=N c=K d=per-channel g=scale dtype
 * (SCALE_DTYPE).
 */
export const MATMUL_FP8 = `${params(4)}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> s: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
${SCALE_DTYPE}
${FP8_DECODE}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let n = id.x;
  let t = id.y;
  if (n >= p.b || t >= p.a) { return; }
  let sc = s[select(0u, n, p.d == 1u)];
  var acc = 0.0;
  for (var k = 0u; k < p.c; k++) {
    let i = n * p.c + k;
    var wv = fp8((w[i / 4u] >> ((i % 4u) * 8u)) & 255u) * sc;
    wv = toScaleDType(wv, p.g);
    acc = acc + x[t * p.c + k] * wv;
  }
  y[t * p.b + n] = acc;
}`;

/**
 * An f32 rounded to the fp8 e4m3fn grid, nearest with ties to even (subnormals below 2^−6 on the 2^−9 grid), as
 * @llmq/schemes' fp8Round; |v| ≤ 448 (the callers clamp first).
 */
export const FP8_ROUND = `fn fp8(v: f32) -> f32 {
  let a = abs(v);
  if (a < 0.015625) {
    let r = round(a * 512.0) / 512.0;
    return select(r, -r, v < 0.0);
  }
  let u = bitcast<u32>(v);
  return bitcast<f32>((u + 0x7ffffu + ((u >> 20u) & 1u)) & 0xfff00000u);
}`;

/**
 * Dynamic per-token fp8 e4m3fn fake quantization of x [T, K] (FP8_DYNAMIC inputs), as compressed-tensors computes it
 * in f32: s = amax / 448 (2^−23 when 0), x ← fp8(clamp(x / s, −448, 448)) · s, where fp8 rounds to nearest even
 * (subnormals below 2^−6 on the 2^−9 grid). Divisions round like IEEE division (DIV). a=T b=K.
 */
export const QUANTIZE_INPUT_FP8 = `${params(2)}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
${DIV}
${FP8_ROUND}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let t = id.x;
  if (t >= p.a) { return; }
  var amax = 0.0;
  for (var k = 0u; k < p.b; k++) { amax = max(amax, abs(x[t * p.b + k])); }
  var s = div(amax, 448.0);
  if (s == 0.0) { s = 1.1920929e-7; }
  for (var k = 0u; k < p.b; k++) { y[t * p.b + k] = fp8(clamp(div(x[t * p.b + k], s), -448.0, 448.0)) * s; }
}`;

/**
 * y[t, n] = Σ_k x[t, k] · w(n, k) with w dequantized from compressed-tensors' nvfp4-pack-quantized layout: fp4 e2m1
 * codes [N, K] two per byte (low nibble first, eight per u32), fp8 e4m3fn group scales [N, K/16] (four per u32) and a
 * global scale g, as compressed-tensors 0.20 dequantizes: s = f32(scale / g) (IEEE division, DIV), w = bf16(f32(code · s)).
 * a=T b=N c=K d=group size e=g bits.
 */
export const MATMUL_NVFP4 = `${params(4)}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> s: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
${BF16}
${FP8_DECODE}
${DIV}
fn fp4(code: u32) -> f32 {
  let e = (code >> 1u) & 3u;
  let m = f32(code & 1u);
  let v = select((1.0 + 0.5 * m) * f32(1u << (max(e, 1u) - 1u)), 0.5 * m, e == 0u);
  return select(v, -v, (code & 8u) != 0u);
}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let n = id.x;
  let t = id.y;
  if (n >= p.b || t >= p.a) { return; }
  let gs = bitcast<f32>(p.e);
  let groups = p.c / p.d;
  var acc = 0.0;
  var sc = 0.0;
  for (var k = 0u; k < p.c; k++) {
    if (k % p.d == 0u) {
      let j = n * groups + k / p.d;
      sc = div(fp8((s[j / 4u] >> ((j % 4u) * 8u)) & 255u), gs);
    }
    let i = n * p.c + k;
    let wv = bf16(fp4((w[i / 8u] >> ((i % 8u) * 4u)) & 15u) * sc);
    acc = acc + x[t * p.c + k] * wv;
  }
  y[t * p.b + n] = acc;
}`;

/**
 * NVFP4 input activations (dynamic "local" tensor_group): x [T, K] fake-quantized per group of 16 with the calibrated
 * global scale g, as compressed-tensors computes it in f32: s = fp8(min(g · (amax / 6), 448)) (0.125 when 0), then
 * with s' = s / g: x ← fp4(clamp(x / s', −6, 6)) · s', where fp4 rounds to the e2m1 grid {0, .5, 1, 1.5, 2, 3, 4, 6}
 * half to even (cast_to_fp4's thresholds). Divisions round like IEEE division (DIV). a=T b=K c=group size d=g bits.
 */
export const QUANTIZE_INPUT_NVFP4 = `${params(2)}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
${DIV}
${FP8_ROUND}
fn fp4(v: f32) -> f32 {
  let a = abs(v);
  var m = 6.0;
  if (a <= 0.25) { m = 0.0; } else if (a < 0.75) { m = 0.5; } else if (a <= 1.25) { m = 1.0; } else if (a < 1.75) { m = 1.5; }
  else if (a <= 2.5) { m = 2.0; } else if (a < 3.5) { m = 3.0; } else if (a <= 5.0) { m = 4.0; }
  return select(m, -m, v < 0.0);
}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = ${FLAT_ID};
  if (i >= p.a * (p.b / p.c)) { return; }
  let base = i * p.c;
  let g = bitcast<f32>(p.d);
  var amax = 0.0;
  for (var j = 0u; j < p.c; j++) { amax = max(amax, abs(x[base + j])); }
  var s = fp8(min(g * div(amax, 6.0), 448.0));
  if (s == 0.0) { s = 0.125; }
  let se = div(s, g);
  for (var j = 0u; j < p.c; j++) { y[base + j] = fp4(clamp(div(x[base + j], se), -6.0, 6.0)) * se; }
}`;
