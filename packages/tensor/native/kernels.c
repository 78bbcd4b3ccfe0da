/* Native kernels: ISA dispatch, threaded BLAS-3 drivers and blocked LAPACK-style routines.
 * The translation unit is compiled for baseline x86-64; each SIMD level's kernels are compiled inside a
 * `#pragma GCC target` region (isa.inc), and one of them is picked at run time from CPUID (or LLMQ_ISA). */
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

typedef struct {
  long m, n, k;
  float alpha, beta; /* beta applies on the first k-block; structured (c_lower / a_tri) calls use beta = 1 */
  const float* a;
  long rsa, csa;
  const float* b;
  long rsb, csb;
  float* c;
  long ldc;
  int c_lower, a_tri;
} sgemm_args;

typedef struct {
  long m, n, k;
  double alpha, beta;
  const double* a;
  long rsa, csa;
  const double* b;
  long rsb, csb;
  double* c;
  long ldc;
  int c_lower, a_tri;
} dgemm_args;

typedef struct {
  void (*sgemm_part)(const sgemm_args*, long, long, long, long, float*, float*);
  void (*dgemm_part)(const dgemm_args*, long, long, long, long, double*, double*);
  void (*sgemm_shared)(const sgemm_args*, long, long, int, int, llmq_barrier*, int*, float*, float*);
  void (*dgemm_shared)(const dgemm_args*, long, long, int, int, llmq_barrier*, int*, double*, double*);
  int mr_s, mr_d;
  void (*fwht_rows)(float*, long, long, long);
  void (*minmax_groups)(const float*, long, long, long, float*, float*);
  void (*quant_groups)(const float*, long, long, long, const float*, const float*, float, float, int, float*);
  long (*potf2_d)(double*, long, double*);
  void (*trtri_d)(const double*, double*, long, int);
  void (*silu_range)(const float*, const float*, float*, long, long);
  void (*softmax_span)(float*, long, long);
  void (*rmsnorm_range)(const float*, const float*, long, double, float*, long, long);
  void (*rope_range)(float*, long, long, const float*, const float*, long, long);
  void (*add_range)(const float*, const float*, float*, long, long);
  void (*scale_range)(const float*, float, float*, long, long);
  void (*logit_rows)(const float*, const float*, long, const int32_t*, double*, long, long);
} isa_ops;

/* Pack-buffer capacity covers every level: MC ≤ MC_MULT·12, KC = 256, NC·KC ≤ 4096·256 (f32) / 2048·256 (f64). */
#ifndef MC_MULT
#define MC_MULT 20
#endif
#ifndef KC_F32
#define KC_F32 512 /* B strips (KC·NR = 64 KB) stream from L2; halving the passes over C pays off once C leaves the caches */
#endif
#define PACK_A_ELEMS (MC_MULT * 12 * (KC_F32 > 256 ? KC_F32 : 256))
#define PACK_B_BYTES (4096 * (KC_F32 > 256 ? KC_F32 : 256) * 4)

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")
#define ISA_LEVEL 2
#define SFX avx512
#include "isa.inc"
#undef ISA_LEVEL
#undef SFX
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define ISA_LEVEL 1
#define SFX avx2
#include "isa.inc"
#undef ISA_LEVEL
#undef SFX
#pragma GCC pop_options

#define ISA_LEVEL 0
#define SFX base
#include "isa.inc"
#undef ISA_LEVEL
#undef SFX

/* ---- dispatch ---- */

static int supported_level = -1;
static int active_level = -1;
static const isa_ops* ops;

static int detect_level(void) {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx2"))
    return 2;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
  return 0;
}

static void apply_level(int level) {
  active_level = level;
  ops = level == 2 ? &ops_avx512 : level == 1 ? &ops_avx2 : &ops_base;
}

static void ensure_init(void) {
  if (ops) return;
  supported_level = detect_level();
  int level = supported_level;
  const char* env = getenv("LLMQ_ISA");
  if (env) {
    int want = strcmp(env, "avx512") == 0 ? 2 : strcmp(env, "avx2") == 0 ? 1 : strcmp(env, "scalar") == 0 ? 0 : 3;
    if (want < level) level = want;
  }
  apply_level(level);
}

int llmq_isa_supported(void) {
  ensure_init();
  return supported_level;
}

int llmq_isa(void) {
  ensure_init();
  return active_level;
}

int llmq_set_isa(int level) {
  ensure_init();
  if (level > supported_level) level = supported_level;
  if (level < 0) level = 0;
  apply_level(level);
  return active_level;
}

int llmq_threads(void) { return llmq_pool_size(); }
void llmq_set_threads(int n) { llmq_pool_resize(n); }

/* Per-thread pack buffers, allocated on a thread's first GEMM and freed when the thread exits (pool threads live as
 * long as the pool; a Node worker thread's buffers go with it). */
typedef struct {
  void *a, *b;
} pack_pair;
static pthread_key_t pack_key;
static pthread_once_t pack_once = PTHREAD_ONCE_INIT;

static void pack_free(void* p) {
  pack_pair* pp = (pack_pair*)p;
  free(pp->a);
  free(pp->b);
  free(pp);
}

static void pack_key_init(void) { pthread_key_create(&pack_key, pack_free); }

static int pack_buffers(void** pa, void** pb) {
  pthread_once(&pack_once, pack_key_init);
  pack_pair* pp = (pack_pair*)pthread_getspecific(pack_key);
  if (!pp) {
    pp = (pack_pair*)calloc(1, sizeof(pack_pair));
    if (!pp) return 0;
    if (posix_memalign(&pp->a, 64, PACK_A_ELEMS * sizeof(double)) != 0) pp->a = NULL;
    if (posix_memalign(&pp->b, 64, PACK_B_BYTES) != 0) pp->b = NULL;
    if (!pp->a || !pp->b) {
      pack_free(pp);
      return 0;
    }
    pthread_setspecific(pack_key, pp);
  }
  *pa = pp->a;
  *pb = pp->b;
  return 1;
}

static void* xmalloc(size_t bytes) {
  void* p = NULL;
  if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) abort();
  return p;
}

#ifndef SHARE_B
#define SHARE_B 1
#endif
#define GEMM_PAR_FLOPS 4.0e6 /* below this a GEMM runs on the calling thread */

/* ---- per-type BLAS-3 drivers and LAPACK-style routines ---- */
#define T float
#define P(x) s##x
#define ARGS sgemm_args
#define PART sgemm_part
#define SHARED sgemm_shared
#include "level3.inc"
#undef SHARED
#undef T
#undef P
#undef ARGS
#undef PART

#define T double
#define P(x) d##x
#define ARGS dgemm_args
#define PART dgemm_part
#define SHARED dgemm_shared
#include "level3.inc"
#undef SHARED
#undef T
#undef P
#undef ARGS
#undef PART

/* ---- memory-bound kernels, threaded over rows / groups ---- */

#define PAR_ELEMS (1L << 16)

static int want_threads(double elems) { return elems >= (double)PAR_ELEMS ? llmq_pool_size() : 1; }

static void range_of(long total, int tid, int nthr, long* b, long* e) {
  *b = total * tid / nthr;
  *e = total * (tid + 1) / nthr;
}

typedef struct {
  double* x;
  long rows, n;
} dfwht_ctx;

/* f64 fast Walsh–Hadamard transform: the same butterflies, in the same order, as the js twin (exact). */
static void dfwht_task(void* v, int tid, int nthr) {
  dfwht_ctx* c = (dfwht_ctx*)v;
  long b, e, n = c->n;
  range_of(c->rows, tid, nthr, &b, &e);
  for (long r = b; r < e; r++) {
    double* row = c->x + r * n;
    for (long h = 1; h < n; h *= 2)
      for (long i = 0; i < n; i += 2 * h)
        for (long j = i; j < i + h; j++) {
          double u = row[j], w = row[j + h];
          row[j] = u + w;
          row[j + h] = u - w;
        }
  }
}

void llmq_dfwht(double* x, long rows, long n) {
  ensure_init();
  if (rows <= 0 || n <= 1) return;
  dfwht_ctx c = {x, rows, n};
  int nt = rows >= 2 ? want_threads((double)rows * (double)n) : 1;
  llmq_parallel(nt, dfwht_task, &c);
}

typedef struct {
  float* x;
  long rows, n;
} fwht_ctx;

static void fwht_task(void* v, int tid, int nthr) {
  fwht_ctx* c = (fwht_ctx*)v;
  long b, e;
  range_of(c->rows, tid, nthr, &b, &e);
  if (e > b) ops->fwht_rows(c->x, b, e, c->n);
}

void llmq_fwht(float* x, long rows, long n) {
  ensure_init();
  if (rows <= 0 || n <= 1) return;
  fwht_ctx c = {x, rows, n};
  int nt = rows >= 2 ? want_threads((double)rows * (double)n) : 1;
  llmq_parallel(nt, fwht_task, &c);
}

typedef struct {
  const float* x;
  long gs, groups;
  float *mn, *mx;
  const float *scale, *zp;
  float qmin, qmax;
  int fake;
  float* out;
} group_ctx;

static void minmax_task(void* v, int tid, int nthr) {
  group_ctx* c = (group_ctx*)v;
  long b, e;
  range_of(c->groups, tid, nthr, &b, &e);
  if (e > b) ops->minmax_groups(c->x, c->gs, b, e, c->mn, c->mx);
}

void llmq_group_minmax(const float* x, long rows, long cols, long groupSize, float* mn, float* mx) {
  ensure_init();
  if (rows <= 0 || cols <= 0) return;
  group_ctx c = {x, groupSize, rows * (cols / groupSize), mn, mx, NULL, NULL, 0, 0, 0, NULL};
  llmq_parallel(want_threads((double)rows * (double)cols), minmax_task, &c);
}

static void quant_task(void* v, int tid, int nthr) {
  group_ctx* c = (group_ctx*)v;
  long b, e;
  range_of(c->groups, tid, nthr, &b, &e);
  if (e > b) ops->quant_groups(c->x, c->gs, b, e, c->scale, c->zp, c->qmin, c->qmax, c->fake, c->out);
}

void llmq_quantize_groups(const float* x, long rows, long cols, long groupSize, const float* scale, const float* zp, float qmin, float qmax,
                          int fake, float* out) {
  ensure_init();
  if (rows <= 0 || cols <= 0) return;
  group_ctx c = {x, groupSize, rows * (cols / groupSize), NULL, NULL, scale, zp, qmin, qmax, fake, out};
  llmq_parallel(want_threads((double)rows * (double)cols), quant_task, &c);
}

/* ---- SiLU-gated product, elementwise, split over threads ---- */
typedef struct {
  const float *g, *u;
  float* out;
  long n;
} silu_ctx;

static void silu_task(void* v, int tid, int nthr) {
  silu_ctx* c = (silu_ctx*)v;
  long b, e;
  range_of(c->n, tid, nthr, &b, &e);
  ops->silu_range(c->g, c->u, c->out, b, e);
}

void llmq_silu_mul(const float* gate, const float* up, long n, float* out) {
  ensure_init();
  if (n <= 0) return;
  silu_ctx c = {gate, up, out, n};
  llmq_parallel(want_threads((double)n * 16.0), silu_task, &c);
}

/* ---- skinny sgemm (m ≤ 4, B transposed: a decode step's linears, y = x·Wᵀ with W [n, k] row-major) ----
 * The blocked GEMM packs all of W for a single row of x, which makes a 1×k·kᵀ×n product memory-bound twice over and
 * single-threaded in the packing; here each thread streams its own rows of W once and takes the m dot products. */
typedef struct {
  const float *a, *b;
  float* c;
  long m, n, k;
  float alpha, beta;
} gemv_ctx;

__attribute__((target("avx512f,fma"))) static float dot_avx512(const float* x, const float* y, long k) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  long p = 0;
  for (; p + 64 <= k; p += 64) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + p), _mm512_loadu_ps(y + p), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + p + 16), _mm512_loadu_ps(y + p + 16), s1);
    s2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + p + 32), _mm512_loadu_ps(y + p + 32), s2);
    s3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + p + 48), _mm512_loadu_ps(y + p + 48), s3);
  }
  for (; p + 16 <= k; p += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + p), _mm512_loadu_ps(y + p), s0);
  float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
  for (; p < k; p++) s += x[p] * y[p];
  return s;
}

__attribute__((target("avx2,fma"))) static float dot_avx2(const float* x, const float* y, long k) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  long p = 0;
  for (; p + 32 <= k; p += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + p), _mm256_loadu_ps(y + p), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + p + 8), _mm256_loadu_ps(y + p + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + p + 16), _mm256_loadu_ps(y + p + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + p + 24), _mm256_loadu_ps(y + p + 24), s3);
  }
  for (; p + 8 <= k; p += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + p), _mm256_loadu_ps(y + p), s0);
  __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
  float r = _mm_cvtss_f32(h);
  for (; p < k; p++) r += x[p] * y[p];
  return r;
}

static float dot_base(const float* x, const float* y, long k) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  long p = 0;
  for (; p + 4 <= k; p += 4) {
    s0 += x[p] * y[p];
    s1 += x[p + 1] * y[p + 1];
    s2 += x[p + 2] * y[p + 2];
    s3 += x[p + 3] * y[p + 3];
  }
  float s = (s0 + s1) + (s2 + s3);
  for (; p < k; p++) s += x[p] * y[p];
  return s;
}

static void gemv_task(void* v, int tid, int nthr) {
  gemv_ctx* c = (gemv_ctx*)v;
  float (*dot)(const float*, const float*, long) = active_level == 2 ? dot_avx512 : active_level == 1 ? dot_avx2 : dot_base;
  long b, e;
  range_of(c->n, tid, nthr, &b, &e);
  for (long j = b; j < e; j++)
    for (long i = 0; i < c->m; i++) {
      float* out = c->c + i * c->n + j;
      const float d = c->alpha * dot(c->a + i * c->k, c->b + j * c->k, c->k);
      *out = c->beta == 0.0f ? d : d + c->beta * *out;
    }
}

/* Whether the skinny path takes this product (row-major A [m, k], B transposed [n, k]). */
static int skinny(long m, long n, long k, int transA, int transB) { return !transA && transB && m >= 1 && m <= 4 && n >= 1 && k >= 1; }

/* ---- causal attention: heads split over threads; per head two sgemms (single-threaded inside the task) and the
 * softmax of backend-js.ts (exp and the row sum in double, the probabilities rounded to f32) ---- */
typedef struct {
  const float *q, *k, *v;
  float* out;
  long tokens, past, heads, kv_heads, d, window;
  float scale;
} attn_ctx;

static void softmax_row(float* s, long tokens, long lo, long hi) {
  for (long j = 0; j < lo; j++) s[j] = 0.0f;
  for (long j = hi + 1; j < tokens; j++) s[j] = 0.0f;
  ops->softmax_span(s, lo, hi);
}

/* A few new tokens against a long cache (decoding): per head, the scores are dot products with the cached keys and the
 * output an accumulation of the cached values, read in place; no K/V copies and no packing. Same softmax as above. */
static void attn_skinny_task(void* v, int tid, int nthr) {
  attn_ctx* c = (attn_ctx*)v;
  const long T = c->tokens, P = c->past, N = P + T, d = c->d, H = c->heads, KV = c->kv_heads, group = H / KV;
  float (*dot)(const float*, const float*, long) = active_level == 2 ? dot_avx512 : active_level == 1 ? dot_avx2 : dot_base;
  long b, e;
  range_of(H, tid, nthr, &b, &e);
  if (e <= b) return;
  float* sc = (float*)xmalloc((size_t)N * sizeof(float));
  for (long h = b; h < e; h++) {
    const long g = h / group;
    for (long i = 0; i < T; i++) {
      const long pos = P + i;
      const long lo = c->window == 0 ? 0 : (pos - c->window + 1 > 0 ? pos - c->window + 1 : 0);
      const float* q = c->q + (i * H + h) * d;
      for (long j = lo; j <= pos; j++) sc[j] = c->scale * dot(q, c->k + (j * KV + g) * d, d);
      softmax_row(sc, pos + 1, lo, pos);
      float* o = c->out + (i * H + h) * d;
      for (long t = 0; t < d; t++) o[t] = 0.0f;
      for (long j = lo; j <= pos; j++) {
        const float p = sc[j];
        const float* vj = c->v + (j * KV + g) * d;
        for (long t = 0; t < d; t++) o[t] += p * vj[t];
      }
    }
  }
  free(sc);
}

/* Query blocks of ATTN_QB rows: a block's scores cover only the keys its rows can see (causal: up to its last row; a
 * sliding window: from its first row's window start), so the masked triangle is neither computed nor multiplied, and
 * at most ATTN_QB × (past + T) scores are alive per thread. Threads take (head, block) units, head-major, so a thread
 * copies a KV head's keys and values once for all the blocks it takes of that head's group. */
#define ATTN_QB 64

static void attn_task(void* v, int tid, int nthr) {
  attn_ctx* c = (attn_ctx*)v;
  const long T = c->tokens, P = c->past, N = P + T, d = c->d, H = c->heads, KV = c->kv_heads, group = H / KV;
  const long blocks = (T + ATTN_QB - 1) / ATTN_QB;
  long b, e;
  range_of(H * blocks, tid, nthr, &b, &e);
  if (e <= b) return;
  float* qh = (float*)xmalloc((size_t)(ATTN_QB * d) * sizeof(float));
  float* kt = (float*)xmalloc((size_t)(N * d) * sizeof(float)); /* the KV head's keys transposed, [d, N] */
  float* vh = (float*)xmalloc((size_t)(N * d) * sizeof(float));
  float* oh = (float*)xmalloc((size_t)(ATTN_QB * d) * sizeof(float));
  float* sc = (float*)xmalloc((size_t)ATTN_QB * (size_t)N * sizeof(float));
  long loaded = -1;
  for (long u = b; u < e; u++) {
    const long h = u / blocks, i0 = (u % blocks) * ATTN_QB, rows = T - i0 < ATTN_QB ? T - i0 : ATTN_QB, g = h / group;
    if (g != loaded) {
      for (long t = 0; t < N; t++) {
        const float* kr = c->k + (t * KV + g) * d;
        for (long x = 0; x < d; x++) kt[x * N + t] = kr[x];
        memcpy(vh + t * d, c->v + (t * KV + g) * d, (size_t)d * sizeof(float));
      }
      loaded = g;
    }
    const long first = P + i0, last = P + i0 + rows - 1;
    const long lo = c->window == 0 || first - c->window + 1 < 0 ? 0 : first - c->window + 1, cols = last - lo + 1;
    for (long t = 0; t < rows; t++) memcpy(qh + t * d, c->q + ((i0 + t) * H + h) * d, (size_t)d * sizeof(float));
    /* Q·Kᵀ with Kᵀ stored row-major: the GEMM packs B by contiguous rows (a per-block gather from K cost more than
     * the product); every score is the same k-ordered sum as before. */
    sgemm_args sa = sargs(rows, cols, d, c->scale, qh, d, 1, kt + lo, N, 1, sc, cols);
    sa.beta = 0.0f;
    sgemm_run(&sa);
    for (long i = 0; i < rows; i++) {
      const long pos = first + i;
      const long wlo = c->window == 0 || pos - c->window + 1 < 0 ? 0 : pos - c->window + 1;
      softmax_row(sc + i * cols, cols, wlo - lo, pos - lo);
    }
    spub_gemm(rows, d, cols, sc, 0, vh + lo * d, 0, oh, 1.0f, 0.0f);
    for (long t = 0; t < rows; t++) memcpy(c->out + ((i0 + t) * H + h) * d, oh + t * d, (size_t)d * sizeof(float));
  }
  free(qh);
  free(kt);
  free(vh);
  free(oh);
  free(sc);
}

void llmq_causal_attention(const float* q, const float* k, const float* v, long tokens, long past, long heads, long kvHeads, long headDim,
                           long window, float scale, float* out) {
  ensure_init();
  if (tokens <= 0 || heads <= 0 || headDim <= 0) return;
  attn_ctx c = {q, k, v, out, tokens, past, heads, kvHeads, headDim, window, scale};
  const long units = tokens <= 4 ? heads : heads * ((tokens + ATTN_QB - 1) / ATTN_QB);
  const int nt = units >= 2 ? want_threads((double)tokens * (double)(tokens + past) * (double)heads * (double)headDim / 16.0) : 1;
  llmq_parallel(nt, tokens <= 4 ? attn_skinny_task : attn_task, &c);
}

/* ---- the decoder forward's row kernels (forward.inc), split over threads ---- */
typedef struct {
  const float *x, *w, *cosv, *sinv, *b;
  float* out;
  long rows, cols, heads;
  double arg; /* rmsnorm's eps, scale's factor (an f32 value) */
} rows_ctx;

static void rmsnorm_task(void* v, int tid, int nthr) {
  rows_ctx* c = (rows_ctx*)v;
  long b, e;
  range_of(c->rows, tid, nthr, &b, &e);
  ops->rmsnorm_range(c->x, c->w, c->cols, c->arg, c->out, b, e);
}

void llmq_rmsnorm(const float* x, long rows, long cols, const float* w, double eps, float* out) {
  ensure_init();
  if (rows <= 0 || cols <= 0) return;
  rows_ctx c = {x, w, NULL, NULL, NULL, out, rows, cols, 0, eps};
  llmq_parallel(rows >= 2 ? want_threads((double)rows * (double)cols) : 1, rmsnorm_task, &c);
}

static void rope_task(void* v, int tid, int nthr) {
  rows_ctx* c = (rows_ctx*)v;
  long b, e;
  range_of(c->rows, tid, nthr, &b, &e);
  ops->rope_range(c->out, c->heads, c->cols, c->cosv, c->sinv, b, e);
}

void llmq_rope(float* x, long tokens, long heads, long dim, const float* cosv, const float* sinv) {
  ensure_init();
  if (tokens <= 0 || heads <= 0 || dim <= 0) return;
  rows_ctx c = {NULL, NULL, cosv, sinv, NULL, x, tokens, dim, heads, 0.0};
  llmq_parallel(tokens >= 2 ? want_threads((double)tokens * (double)heads * (double)dim) : 1, rope_task, &c);
}

static void add_task(void* v, int tid, int nthr) {
  rows_ctx* c = (rows_ctx*)v;
  long b, e;
  range_of(c->rows, tid, nthr, &b, &e);
  ops->add_range(c->x, c->b, c->out, b, e);
}

void llmq_add(const float* a, const float* b, long n, float* out) {
  ensure_init();
  if (n <= 0) return;
  rows_ctx c = {a, NULL, NULL, NULL, b, out, n, 0, 0, 0.0};
  llmq_parallel(want_threads((double)n), add_task, &c);
}

static void scale_task(void* v, int tid, int nthr) {
  rows_ctx* c = (rows_ctx*)v;
  long b, e;
  range_of(c->rows, tid, nthr, &b, &e);
  ops->scale_range(c->x, (float)c->arg, c->out, b, e);
}

void llmq_scale(const float* a, float s, long n, float* out) {
  ensure_init();
  if (n <= 0) return;
  rows_ctx c = {a, NULL, NULL, NULL, NULL, out, n, 0, 0, s};
  llmq_parallel(want_threads((double)n), scale_task, &c);
}

typedef struct {
  const float *lq, *lr;
  const int32_t* targets;
  double* out;
  long rows, vocab;
} logit_ctx;

static void logit_task(void* v, int tid, int nthr) {
  logit_ctx* c = (logit_ctx*)v;
  long b, e;
  range_of(c->rows, tid, nthr, &b, &e);
  ops->logit_rows(c->lq, c->lr, c->vocab, c->targets, c->out, b, e);
}

void llmq_logit_stats(const float* lq, const float* lr, long rows, long vocab, const int32_t* targets, double* out) {
  ensure_init();
  if (rows <= 0 || vocab <= 0) return;
  logit_ctx c = {lq, lr, targets, out, rows, vocab};
  llmq_parallel(rows >= 2 ? want_threads((double)rows * (double)vocab) : 1, logit_task, &c);
}

/* ---- table dequantization: out[i] = f32((lut[code[i]] − zp[s]) · scale[s]), s = (i / groupSize) mod scales: fp8 / int8
 * KV-cache codes read back (one scale per row, per head, or one for all) ---- */
typedef struct {
  const uint8_t* codes;
  const float *lut, *scale, *zp;
  float* out;
  long n, group, scales;
} lut_ctx;

static void lut_task(void* v, int tid, int nthr) {
  lut_ctx* c = (lut_ctx*)v;
  long b, e;
  range_of(c->n / c->group, tid, nthr, &b, &e);
  for (long gi = b; gi < e; gi++) {
    const long si = gi % c->scales;
    const float s = c->scale[si], z = c->zp ? c->zp[si] : 0.0f;
    const uint8_t* q = c->codes + gi * c->group;
    float* o = c->out + gi * c->group;
    if (c->zp)
      for (long j = 0; j < c->group; j++) o[j] = (c->lut[q[j]] - z) * s;
    else
      for (long j = 0; j < c->group; j++) o[j] = c->lut[q[j]] * s;
  }
}

void llmq_lut_dequant(const uint8_t* codes, const float* lut, const float* scale, const float* zp, long n, long group, long scales, float* out) {
  ensure_init();
  if (n <= 0) return;
  lut_ctx c = {codes, lut, scale, zp, out, n, group, scales};
  llmq_parallel(want_threads((double)n), lut_task, &c);
}

/* ---- public entry points ---- */
void llmq_sgemm(long m, long n, long k, const float* a, int transA, const float* b, int transB, float* c, float alpha, float beta) {
  if (skinny(m, n, k, transA, transB)) {
    ensure_init();
    gemv_ctx g = {a, b, c, m, n, k, alpha, beta};
    llmq_parallel(n >= 2 ? want_threads((double)n * (double)k) : 1, gemv_task, &g);
    return;
  }
  spub_gemm(m, n, k, a, transA, b, transB, c, alpha, beta);
}
void llmq_dgemm(long m, long n, long k, const double* a, int transA, const double* b, int transB, double* c, double alpha, double beta) {
  dpub_gemm(m, n, k, a, transA, b, transB, c, alpha, beta);
}
void llmq_ssyrk(long m, long n, const float* x, float* h, float alpha) { spub_syrk(m, n, x, h, alpha); }
void llmq_dsyrk(long m, long n, const double* x, double* h, double alpha) { dpub_syrk(m, n, x, h, alpha); }
long llmq_spotrf(float* a, long n) { return spub_potrf(a, n); }
long llmq_dpotrf(double* a, long n) { return dpub_potrf(a, n); }
void llmq_spotri(float* l, long n) { spub_potri(l, n); }
void llmq_dpotri(double* l, long n) { dpub_potri(l, n); }
void llmq_strsm(int right, int lower, int transT, int unitDiag, long m, long n, const float* t, float* b) {
  spub_trsm(right, lower, transT, unitDiag, m, n, t, b);
}
void llmq_dtrsm(int right, int lower, int transT, int unitDiag, long m, long n, const double* t, double* b) {
  dpub_trsm(right, lower, transT, unitDiag, m, n, t, b);
}
