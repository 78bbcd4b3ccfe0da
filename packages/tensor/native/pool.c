/* A small persistent pthread pool. One parallel region runs at a time (a mutex guards it); a caller that finds
 * the pool busy — another Node worker thread, or a kernel calling a kernel — runs its task alone instead of
 * waiting, so there is no deadlock and no oversubscription. */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "kernels.h"

static pthread_mutex_t region = PTHREAD_MUTEX_INITIALIZER; /* held for the whole parallel region */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv_start = PTHREAD_COND_INITIALIZER;
static pthread_cond_t cv_done = PTHREAD_COND_INITIALIZER;
static pthread_t* workers;
static int nworkers = -1; /* -1: not started yet */
static long generation;
static long start_generation; /* generation when the current workers were created */
static int pending;
static int stopping;
static llmq_task cur_fn;
static void* cur_ctx;
static int cur_nthr;

/* Spin this many pause-iterations (~100 µs) before sleeping: the blocked LAPACK routines issue GEMMs back to back,
 * and a condition-variable wake-up costs tens of microseconds each time. */
#define SPIN_ITERS 4000

static void* worker_main(void* arg) {
  const int id = (int)(long)arg; /* 1-based: the caller is thread 0 */
  long seen = 0;
  pthread_mutex_lock(&mu);
  seen = start_generation;
  for (;;) {
    if (generation == seen && !stopping) {
      pthread_mutex_unlock(&mu);
      for (int i = 0; i < SPIN_ITERS && __atomic_load_n(&generation, __ATOMIC_ACQUIRE) == seen && !__atomic_load_n(&stopping, __ATOMIC_ACQUIRE); i++)
        __builtin_ia32_pause();
      pthread_mutex_lock(&mu);
    }
    while (generation == seen && !stopping) pthread_cond_wait(&cv_start, &mu);
    if (stopping) break;
    seen = generation;
    llmq_task fn = cur_fn;
    void* ctx = cur_ctx;
    int nthr = cur_nthr;
    pthread_mutex_unlock(&mu);
    if (id < nthr) fn(ctx, id, nthr);
    pthread_mutex_lock(&mu);
    if (__atomic_sub_fetch(&pending, 1, __ATOMIC_ACQ_REL) == 0) pthread_cond_signal(&cv_done);
  }
  pthread_mutex_unlock(&mu);
  return NULL;
}

static int default_threads(void) {
  const char* env = getenv("LLMQ_THREADS");
  if (env && *env) {
    int v = atoi(env);
    if (v >= 1) return v > 256 ? 256 : v;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n >= 1 ? (int)(n > 256 ? 256 : n) : 1;
}

/* Call with `region` held. */
static void start_workers(int total) {
  int want = total - 1;
  workers = want > 0 ? (pthread_t*)calloc((size_t)want, sizeof(pthread_t)) : NULL;
  int started = 0;
  pthread_mutex_lock(&mu);
  stopping = 0;
  start_generation = generation;
  pthread_mutex_unlock(&mu);
  for (int i = 0; i < want; i++) {
    if (pthread_create(&workers[i], NULL, worker_main, (void*)(long)(i + 1)) != 0) break;
    started++;
  }
  nworkers = started;
}

static void stop_workers(void) {
  if (nworkers <= 0) {
    nworkers = 0;
    return;
  }
  pthread_mutex_lock(&mu);
  __atomic_store_n(&stopping, 1, __ATOMIC_RELEASE);
  pthread_cond_broadcast(&cv_start);
  pthread_mutex_unlock(&mu);
  for (int i = 0; i < nworkers; i++) pthread_join(workers[i], NULL);
  free(workers);
  workers = NULL;
  nworkers = 0;
}

int llmq_pool_size(void) {
  /* Busy (a kernel inside a parallel region asking for its own threads, or another thread's region): that caller's
   * llmq_parallel runs alone anyway, so it gets 1 instead of waiting for a region it may be part of. */
  if (pthread_mutex_trylock(&region) != 0) return 1;
  if (nworkers < 0) start_workers(default_threads());
  int n = nworkers + 1;
  pthread_mutex_unlock(&region);
  return n;
}

void llmq_pool_resize(int n) {
  if (n < 1) n = 1;
  if (n > 256) n = 256;
  pthread_mutex_lock(&region);
  if (nworkers >= 0) stop_workers();
  start_workers(n);
  pthread_mutex_unlock(&region);
}

void llmq_parallel(int nthr, llmq_task fn, void* ctx) {
  if (nthr <= 1 || pthread_mutex_trylock(&region) != 0) {
    fn(ctx, 0, 1);
    return;
  }
  if (nworkers < 0) start_workers(default_threads());
  if (nthr > nworkers + 1) nthr = nworkers + 1;
  if (nthr <= 1) {
    pthread_mutex_unlock(&region);
    fn(ctx, 0, 1);
    return;
  }
  pthread_mutex_lock(&mu);
  cur_fn = fn;
  cur_ctx = ctx;
  cur_nthr = nthr;
  __atomic_store_n(&pending, nworkers, __ATOMIC_RELEASE);
  __atomic_add_fetch(&generation, 1, __ATOMIC_ACQ_REL);
  pthread_cond_broadcast(&cv_start);
  pthread_mutex_unlock(&mu);
  fn(ctx, 0, nthr);
  for (int i = 0; i < SPIN_ITERS && __atomic_load_n(&pending, __ATOMIC_ACQUIRE) > 0; i++) __builtin_ia32_pause();
  pthread_mutex_lock(&mu);
  while (pending > 0) pthread_cond_wait(&cv_done, &mu);
  pthread_mutex_unlock(&mu);
  pthread_mutex_unlock(&region);
}

void llmq_barrier_wait(llmq_barrier* b, int nthr, int* sense) {
  if (nthr <= 1) return;
  *sense = !*sense;
  if (__atomic_add_fetch(&b->count, 1, __ATOMIC_ACQ_REL) == nthr) {
    __atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&b->sense, *sense, __ATOMIC_RELEASE);
    return;
  }
  /* Yield after a short spin: the machine may have fewer free cores than threads. */
  for (int spins = 0; __atomic_load_n(&b->sense, __ATOMIC_ACQUIRE) != *sense; spins++) {
    if (spins < 4000)
      __builtin_ia32_pause();
    else
      sched_yield();
  }
}
