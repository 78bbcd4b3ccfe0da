// N-API entry of the native tensor backend. Every argument is checked here (types, integer sizes, array lengths,
// enum strings) before any C kernel runs, so a wrong call throws a JS error instead of touching memory out of bounds.
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "kernels.h"

namespace {

constexpr double kMaxDim = 9007199254740991.0;  // Number.MAX_SAFE_INTEGER

struct Args {
  const Napi::CallbackInfo& info;
  const char* kernel;

  [[noreturn]] void fail(const std::string& msg, bool range = false) const {
    std::string m = std::string(kernel) + ": " + msg;
    if (range) throw Napi::RangeError::New(info.Env(), m);
    throw Napi::TypeError::New(info.Env(), m);
  }

  void count(size_t n) const {
    if (info.Length() < n) fail("expected " + std::to_string(n) + " arguments, got " + std::to_string(info.Length()));
  }

  int64_t dim(size_t i, const char* name) const {
    if (!info[i].IsNumber()) fail(std::string(name) + " must be a number");
    double v = info[i].As<Napi::Number>().DoubleValue();
    if (!(v >= 0) || v > kMaxDim || std::floor(v) != v) fail(std::string(name) + " must be a non-negative integer, got " + std::to_string(v), true);
    return static_cast<int64_t>(v);
  }

  double num(size_t i, const char* name) const {
    if (!info[i].IsNumber()) fail(std::string(name) + " must be a number");
    return info[i].As<Napi::Number>().DoubleValue();
  }

  bool flag(size_t i, const char* name) const {
    if (!info[i].IsBoolean()) fail(std::string(name) + " must be a boolean");
    return info[i].As<Napi::Boolean>().Value();
  }

  std::string str(size_t i, const char* name) const {
    if (!info[i].IsString()) fail(std::string(name) + " must be a string");
    return info[i].As<Napi::String>().Utf8Value();
  }

  template <typename E>
  E* array(size_t i, const char* name, napi_typedarray_type type, const char* tname, uint64_t need) const {
    if (!info[i].IsTypedArray()) fail(std::string(name) + " must be a " + tname);
    auto ta = info[i].As<Napi::TypedArray>();
    if (ta.TypedArrayType() != type) fail(std::string(name) + " must be a " + tname);
    uint64_t len = ta.ElementLength();
    if (len < need)
      fail(std::string(name) + " has " + std::to_string(len) + " elements, needs at least " + std::to_string(need), true);
    if (len == 0) return nullptr;
    return reinterpret_cast<E*>(static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset());
  }

  float* f32(size_t i, const char* name, uint64_t need) const { return array<float>(i, name, napi_float32_array, "Float32Array", need); }
  double* f64(size_t i, const char* name, uint64_t need) const { return array<double>(i, name, napi_float64_array, "Float64Array", need); }

  uint64_t mul(uint64_t a, uint64_t b, const char* what) const {
    uint64_t r;
    if (__builtin_mul_overflow(a, b, &r) || r > (1ULL << 53)) fail(std::string(what) + " is too large", true);
    return r;
  }
};

template <typename E>
Napi::Value Gemm(const Napi::CallbackInfo& info, const char* name) {
  Args g{info, name};
  g.count(10);
  int64_t m = g.dim(0, "m"), n = g.dim(1, "n"), k = g.dim(2, "k");
  bool ta = g.flag(4, "transA"), tb = g.flag(6, "transB");
  double alpha = g.num(8, "alpha"), beta = g.num(9, "beta");
  uint64_t mk = g.mul(m, k, "m·k"), kn = g.mul(k, n, "k·n"), mn = g.mul(m, n, "m·n");
  if constexpr (sizeof(E) == 4) {
    const float* a = g.f32(3, "a", mk);
    const float* b = g.f32(5, "b", kn);
    float* c = g.f32(7, "c", mn);
    llmq_sgemm(m, n, k, a, ta, b, tb, c, static_cast<float>(alpha), static_cast<float>(beta));
  } else {
    const double* a = g.f64(3, "a", mk);
    const double* b = g.f64(5, "b", kn);
    double* c = g.f64(7, "c", mn);
    llmq_dgemm(m, n, k, a, ta, b, tb, c, alpha, beta);
  }
  return info.Env().Undefined();
}

template <typename E>
Napi::Value Syrk(const Napi::CallbackInfo& info, const char* name) {
  Args g{info, name};
  g.count(5);
  int64_t m = g.dim(0, "m"), n = g.dim(1, "n");
  double alpha = g.num(4, "alpha");
  uint64_t mn = g.mul(m, n, "m·n"), nn = g.mul(n, n, "n·n");
  if constexpr (sizeof(E) == 4)
    llmq_ssyrk(m, n, g.f32(2, "x", mn), g.f32(3, "h", nn), static_cast<float>(alpha));
  else
    llmq_dsyrk(m, n, g.f64(2, "x", mn), g.f64(3, "h", nn), alpha);
  return info.Env().Undefined();
}

template <typename E>
Napi::Value Potrf(const Napi::CallbackInfo& info, const char* name) {
  Args g{info, name};
  g.count(2);
  int64_t n = g.dim(1, "n");
  uint64_t nn = g.mul(n, n, "n·n");
  long r = sizeof(E) == 4 ? llmq_spotrf(g.f32(0, "a", nn), n) : llmq_dpotrf(g.f64(0, "a", nn), n);
  return Napi::Number::New(info.Env(), static_cast<double>(r));
}

template <typename E>
Napi::Value Potri(const Napi::CallbackInfo& info, const char* name) {
  Args g{info, name};
  g.count(2);
  int64_t n = g.dim(1, "n");
  uint64_t nn = g.mul(n, n, "n·n");
  if constexpr (sizeof(E) == 4)
    llmq_spotri(g.f32(0, "l", nn), n);
  else
    llmq_dpotri(g.f64(0, "l", nn), n);
  return info.Env().Undefined();
}

template <typename E>
Napi::Value Trsm(const Napi::CallbackInfo& info, const char* name) {
  Args g{info, name};
  g.count(8);
  std::string side = g.str(0, "side"), uplo = g.str(1, "uplo");
  if (side != "left" && side != "right") g.fail("side must be \"left\" or \"right\", got \"" + side + "\"", true);
  if (uplo != "lower" && uplo != "upper") g.fail("uplo must be \"lower\" or \"upper\", got \"" + uplo + "\"", true);
  bool trans = g.flag(2, "transT"), unit = g.flag(3, "unitDiag");
  int64_t m = g.dim(4, "m"), n = g.dim(5, "n");
  int64_t dim = side == "left" ? m : n;
  uint64_t tt = g.mul(dim, dim, "t size"), mn = g.mul(m, n, "m·n");
  if constexpr (sizeof(E) == 4)
    llmq_strsm(side == "right", uplo == "lower", trans, unit, m, n, g.f32(6, "t", tt), g.f32(7, "b", mn));
  else
    llmq_dtrsm(side == "right", uplo == "lower", trans, unit, m, n, g.f64(6, "t", tt), g.f64(7, "b", mn));
  return info.Env().Undefined();
}

template <typename E>
Napi::Value Fwht(const Napi::CallbackInfo& info, const char* name) {
  Args g{info, name};
  g.count(3);
  int64_t rows = g.dim(1, "rows"), n = g.dim(2, "n");
  if (n == 0 || (n & (n - 1)) != 0) g.fail("n must be a power of two, got " + std::to_string(n), true);
  if constexpr (sizeof(E) == 4)
    llmq_fwht(g.f32(0, "x", g.mul(rows, n, "rows·n")), rows, n);
  else
    llmq_dfwht(g.f64(0, "x", g.mul(rows, n, "rows·n")), rows, n);
  return info.Env().Undefined();
}

int64_t CheckGroups(const Args& g, int64_t cols, int64_t groupSize) {
  if (groupSize < 1) g.fail("groupSize must be ≥ 1", true);
  if (cols % groupSize != 0) g.fail("groupSize " + std::to_string(groupSize) + " does not divide cols " + std::to_string(cols), true);
  return cols / groupSize;
}

Napi::Value GroupMinMax(const Napi::CallbackInfo& info) {
  Args g{info, "groupMinMax"};
  g.count(6);
  int64_t rows = g.dim(1, "rows"), cols = g.dim(2, "cols"), gs = g.dim(3, "groupSize");
  uint64_t groups = g.mul(rows, CheckGroups(g, cols, gs), "rows·groups");
  const float* x = g.f32(0, "x", g.mul(rows, cols, "rows·cols"));
  float* mn = g.f32(4, "outMin", groups);
  float* mx = g.f32(5, "outMax", groups);
  llmq_group_minmax(x, rows, cols, gs, mn, mx);
  return info.Env().Undefined();
}

Napi::Value QuantizeGroups(const Napi::CallbackInfo& info) {
  Args g{info, "quantizeGroups"};
  g.count(10);
  int64_t rows = g.dim(1, "rows"), cols = g.dim(2, "cols"), gs = g.dim(3, "groupSize");
  uint64_t groups = g.mul(rows, CheckGroups(g, cols, gs), "rows·groups");
  uint64_t total = g.mul(rows, cols, "rows·cols");
  const float* x = g.f32(0, "x", total);
  const float* scale = g.f32(4, "scale", groups);
  const float* zp = nullptr;
  if (!info[5].IsNull() && !info[5].IsUndefined()) zp = g.f32(5, "zp", groups);
  double qmin = g.num(6, "qmin"), qmax = g.num(7, "qmax");
  if (static_cast<double>(static_cast<float>(qmin)) != qmin || static_cast<double>(static_cast<float>(qmax)) != qmax)
    g.fail("qmin and qmax must be exactly representable in f32", true);
  bool fake = g.flag(8, "fake");
  float* out = g.f32(9, "out", total);
  llmq_quantize_groups(x, rows, cols, gs, scale, zp, static_cast<float>(qmin), static_cast<float>(qmax), fake, out);
  return info.Env().Undefined();
}

Napi::Value LutDequant(const Napi::CallbackInfo& info) {
  Args g{info, "lutDequant"};
  g.count(7);
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) g.fail("codes must be a Uint8Array");
  Napi::Uint8Array codes = info[0].As<Napi::Uint8Array>();
  int64_t n = static_cast<int64_t>(codes.ElementLength()), group = g.dim(4, "groupSize"), scales = g.dim(5, "scales");
  if (group < 1 || n % group != 0) g.fail("groupSize must be ≥ 1 and divide the number of codes", true);
  if (scales < 1) g.fail("scales must be ≥ 1", true);
  const float* lut = g.f32(1, "lut", 256);
  const float* scale = g.f32(2, "scale", static_cast<uint64_t>(scales));
  const float* zp = nullptr;
  if (!info[3].IsNull() && !info[3].IsUndefined()) zp = g.f32(3, "zp", static_cast<uint64_t>(scales));
  float* out = g.f32(6, "out", static_cast<uint64_t>(n));
  llmq_lut_dequant(codes.Data(), lut, scale, zp, n, group, scales, out);
  return info.Env().Undefined();
}

Napi::Value SiluMul(const Napi::CallbackInfo& info) {
  Args g{info, "siluMul"};
  g.count(4);
  int64_t n = g.dim(2, "n");
  const float* gate = g.f32(0, "gate", n);
  const float* up = g.f32(1, "up", n);
  float* out = g.f32(3, "out", n);
  llmq_silu_mul(gate, up, n, out);
  return info.Env().Undefined();
}

Napi::Value CausalAttention(const Napi::CallbackInfo& info) {
  Args g{info, "causalAttention"};
  g.count(11);
  int64_t tokens = g.dim(3, "tokens"), past = g.dim(4, "past"), heads = g.dim(5, "heads"), kv = g.dim(6, "kvHeads"), d = g.dim(7, "headDim"),
          window = g.dim(8, "window");
  if (kv < 1 || heads % kv != 0) g.fail("heads must be a multiple of kvHeads", true);
  const float* q = g.f32(0, "q", g.mul(g.mul(tokens, heads, "tokens·heads"), d, "tokens·heads·headDim"));
  uint64_t kvn = g.mul(g.mul(tokens + past, kv, "(past+tokens)·kvHeads"), d, "(past+tokens)·kvHeads·headDim");
  const float* k = g.f32(1, "k", kvn);
  const float* v = g.f32(2, "v", kvn);
  double scale = g.num(9, "scale");
  float* out = g.f32(10, "out", g.mul(g.mul(tokens, heads, "tokens·heads"), d, "tokens·heads·headDim"));
  llmq_causal_attention(q, k, v, tokens, past, heads, kv, d, window, static_cast<float>(scale), out);
  return info.Env().Undefined();
}

Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
  Args g{info, "rmsNorm"};
  g.count(6);
  int64_t rows = g.dim(1, "rows"), cols = g.dim(2, "cols");
  uint64_t n = g.mul(rows, cols, "rows·cols");
  const float* x = g.f32(0, "x", n);
  const float* w = g.f32(3, "weight", cols);
  double eps = g.num(4, "eps");
  float* out = g.f32(5, "out", n);
  llmq_rmsnorm(x, rows, cols, w, eps, out);
  return info.Env().Undefined();
}

Napi::Value Rope(const Napi::CallbackInfo& info) {
  Args g{info, "rope"};
  g.count(6);
  int64_t tokens = g.dim(1, "tokens"), heads = g.dim(2, "heads"), dim = g.dim(3, "dim");
  if (dim % 2 != 0) g.fail("dim must be even", true);
  float* x = g.f32(0, "x", g.mul(g.mul(tokens, heads, "tokens·heads"), dim, "tokens·heads·dim"));
  const float* c = g.f32(4, "cos", g.mul(tokens, dim / 2, "tokens·dim/2"));
  const float* s = g.f32(5, "sin", g.mul(tokens, dim / 2, "tokens·dim/2"));
  llmq_rope(x, tokens, heads, dim, c, s);
  return info.Env().Undefined();
}

Napi::Value Add(const Napi::CallbackInfo& info) {
  Args g{info, "add"};
  g.count(4);
  int64_t n = g.dim(2, "n");
  const float* a = g.f32(0, "a", n);
  const float* b = g.f32(1, "b", n);
  float* out = g.f32(3, "out", n);
  llmq_add(a, b, n, out);
  return info.Env().Undefined();
}

Napi::Value Scale(const Napi::CallbackInfo& info) {
  Args g{info, "scale"};
  g.count(4);
  int64_t n = g.dim(2, "n");
  const float* a = g.f32(0, "a", n);
  double s = g.num(1, "s");
  float* out = g.f32(3, "out", n);
  llmq_scale(a, static_cast<float>(s), n, out);
  return info.Env().Undefined();
}

Napi::Value LogitStats(const Napi::CallbackInfo& info) {
  Args g{info, "logitStats"};
  g.count(6);
  int64_t rows = g.dim(2, "rows"), vocab = g.dim(3, "vocab");
  uint64_t n = g.mul(rows, vocab, "rows·vocab");
  const float* lq = g.f32(0, "logits", n);
  const float* lr = nullptr;
  if (!info[1].IsNull() && !info[1].IsUndefined()) lr = g.f32(1, "refLogits", n);
  if (!info[4].IsTypedArray() || info[4].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) g.fail("targets must be an Int32Array");
  Napi::Int32Array targets = info[4].As<Napi::Int32Array>();
  if (targets.ElementLength() < static_cast<size_t>(rows)) g.fail("targets is shorter than rows", true);
  for (int64_t r = 0; r < rows; r++)
    if (targets[r] < 0 || targets[r] >= vocab) g.fail("a target is outside [0, vocab)", true);
  if (!info[5].IsTypedArray() || info[5].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) g.fail("out must be a Float64Array");
  Napi::Float64Array out = info[5].As<Napi::Float64Array>();
  if (out.ElementLength() < static_cast<size_t>(rows) * 4) g.fail("out is shorter than rows·4", true);
  llmq_logit_stats(lq, lr, rows, vocab, targets.Data(), out.Data());
  return info.Env().Undefined();
}

const char* IsaName(int level) { return level == 2 ? "avx512" : level == 1 ? "avx2" : "scalar"; }

Napi::Value GetIsa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), IsaName(llmq_isa())); }
Napi::Value SupportedIsa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), IsaName(llmq_isa_supported())); }

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  Args g{info, "setIsa"};
  g.count(1);
  std::string s = g.str(0, "isa");
  int level = s == "avx512" ? 2 : s == "avx2" ? 1 : s == "scalar" ? 0 : -1;
  if (level < 0) g.fail("isa must be \"avx512\", \"avx2\" or \"scalar\", got \"" + s + "\"", true);
  if (level > llmq_isa_supported()) g.fail(std::string("this CPU does not support ") + s + " (best: " + IsaName(llmq_isa_supported()) + ")", true);
  return Napi::String::New(info.Env(), IsaName(llmq_set_isa(level)));
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), llmq_threads()); }

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Args g{info, "setThreads"};
  g.count(1);
  int64_t n = g.dim(0, "n");
  if (n < 1 || n > 256) g.fail("n must be in [1, 256]", true);
  llmq_set_threads(static_cast<int>(n));
  return Napi::Number::New(info.Env(), llmq_threads());
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  Napi::Object k = Napi::Object::New(env);
  k.Set("sgemm", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Gemm<float>(i, "sgemm"); }, "sgemm"));
  k.Set("dgemm", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Gemm<double>(i, "dgemm"); }, "dgemm"));
  k.Set("ssyrk", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Syrk<float>(i, "ssyrk"); }, "ssyrk"));
  k.Set("dsyrk", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Syrk<double>(i, "dsyrk"); }, "dsyrk"));
  k.Set("spotrf", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Potrf<float>(i, "spotrf"); }, "spotrf"));
  k.Set("dpotrf", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Potrf<double>(i, "dpotrf"); }, "dpotrf"));
  k.Set("spotri", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Potri<float>(i, "spotri"); }, "spotri"));
  k.Set("dpotri", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Potri<double>(i, "dpotri"); }, "dpotri"));
  k.Set("strsm", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Trsm<float>(i, "strsm"); }, "strsm"));
  k.Set("dtrsm", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Trsm<double>(i, "dtrsm"); }, "dtrsm"));
  k.Set("fwht", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Fwht<float>(i, "fwht"); }, "fwht"));
  k.Set("dfwht", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Fwht<double>(i, "dfwht"); }, "dfwht"));
  k.Set("groupMinMax", Napi::Function::New(env, GroupMinMax, "groupMinMax"));
  k.Set("quantizeGroups", Napi::Function::New(env, QuantizeGroups, "quantizeGroups"));
  k.Set("siluMul", Napi::Function::New(env, SiluMul, "siluMul"));
  k.Set("lutDequant", Napi::Function::New(env, LutDequant, "lutDequant"));
  k.Set("causalAttention", Napi::Function::New(env, CausalAttention, "causalAttention"));
  k.Set("rmsNorm", Napi::Function::New(env, RmsNorm, "rmsNorm"));
  k.Set("rope", Napi::Function::New(env, Rope, "rope"));
  k.Set("add", Napi::Function::New(env, Add, "add"));
  k.Set("scale", Napi::Function::New(env, Scale, "scale"));
  k.Set("logitStats", Napi::Function::New(env, LogitStats, "logitStats"));
  exports.Set("kernels", k);
  exports.Set("getIsa", Napi::Function::New(env, GetIsa, "getIsa"));
  exports.Set("supportedIsa", Napi::Function::New(env, SupportedIsa, "supportedIsa"));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa, "setIsa"));
  exports.Set("getThreads", Napi::Function::New(env, GetThreads, "getThreads"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  return exports;
}

}  // namespace

NODE_API_MODULE(llmq_tensor, Init)
