/* C kernels of the native tensor backend. All matrices are dense row-major; sizes are trusted (the N-API layer
 * checks them). */
#ifndef LLMQ_KERNELS_H
#define LLMQ_KERNELS_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* SIMD levels: 2 = AVX-512 (F/DQ/BW/VL + FMA), 1 = AVX2 + FMA, 0 = baseline x86-64 (SSE2, no AVX). */
int llmq_isa_supported(void);
int llmq_isa(void);
/* Selects a level ≤ the supported one; returns the level in effect. */
int llmq_set_isa(int level);

int llmq_threads(void);
void llmq_set_threads(int n);

void llmq_sgemm(long m, long n, long k, const float* a, int transA, const float* b, int transB, float* c, float alpha, float beta);
void llmq_dgemm(long m, long n, long k, const double* a, int transA, const double* b, int transB, double* c, double alpha, double beta);
void llmq_ssyrk(long m, long n, const float* x, float* h, float alpha);
void llmq_dsyrk(long m, long n, const double* x, double* h, double alpha);
long llmq_spotrf(float* a, long n);
long llmq_dpotrf(double* a, long n);
void llmq_spotri(float* l, long n);
void llmq_dpotri(double* l, long n);
/* side: 0 left, 1 right; lower: 1 lower, 0 upper. */
void llmq_strsm(int right, int lower, int transT, int unitDiag, long m, long n, const float* t, float* b);
void llmq_dtrsm(int right, int lower, int transT, int unitDiag, long m, long n, const double* t, double* b);
void llmq_fwht(float* x, long rows, long n);
void llmq_dfwht(double* x, long rows, long n);
void llmq_group_minmax(const float* x, long rows, long cols, long groupSize, float* mn, float* mx);
void llmq_quantize_groups(const float* x, long rows, long cols, long groupSize, const float* scale, const float* zp, float qmin, float qmax,
                          int fake, float* out);
/* out = silu(gate) · up as backend-js.ts defines it (exp in double, every other step in f32). */
void llmq_silu_mul(const float* gate, const float* up, long n, float* out);
void llmq_lut_dequant(const uint8_t* codes, const float* lut, const float* scale, const float* zp, long n, long group, long scales, float* out);
/* Causal (window > 0: sliding-window) grouped-query attention of one sequence, as backend-js.ts defines it. */
void llmq_causal_attention(const float* q, const float* k, const float* v, long tokens, long past, long heads, long kvHeads, long headDim,
                           long window, float scale, float* out);

/* HF LlamaRMSNorm of each row, rotate-half RoPE in place (cos/sin [tokens, dim/2]), and out = a + b, as backend-js.ts
 * defines them (bit for bit). */
void llmq_rmsnorm(const float* x, long rows, long cols, const float* w, double eps, float* out);
void llmq_rope(float* x, long tokens, long heads, long dim, const float* cosv, const float* sinv);
void llmq_add(const float* a, const float* b, long n, float* out);
void llmq_scale(const float* a, float s, long n, float* out);
/* Per logit row: nll of its target, the reference's nll, KL(reference ‖ model), argmax agreement (backend-js.ts). */
void llmq_logit_stats(const float* lq, const float* lr, long rows, long vocab, const int32_t* targets, double* out);

/* Thread pool (pool.c): runs fn(ctx, tid, nthr) for tid in [0, nthr) and waits. Nested or concurrent calls run
 * serially on the caller (nthr = 1). */
typedef void (*llmq_task)(void* ctx, int tid, int nthr);
void llmq_parallel(int nthr, llmq_task fn, void* ctx);
int llmq_pool_size(void);

/* Spin-then-yield barrier for the nthr threads of one parallel region; sense is per-thread state starting at 0. */
typedef struct {
  int count;
  int sense;
} llmq_barrier;
void llmq_barrier_wait(llmq_barrier* b, int nthr, int* sense);
void llmq_pool_resize(int n);

#ifdef __cplusplus
}
#endif
#endif
