/* Thread pool: persistent workers and a parallel_for over index ranges.
 * The calling thread works too (as thread 0), so a pool of n threads starts n-1
 * workers. Chunks are handed out dynamically; a kernel must make each output
 * depend only on its index range, never on which thread ran it (results are then
 * identical for any thread count). */
#ifndef DS_POOL_H
#define DS_POOL_H

#include <stdint.h>

#include "core/status.h"

typedef struct ds_pool ds_pool;

/* fn processes items [i0, i1); tid in [0, n_threads) selects per-thread scratch. */
typedef void (*ds_pool_fn)(void *ctx, int64_t i0, int64_t i1, int tid);

/* Physical cores: unique (physical id, core id) pairs of /proc/cpuinfo, capped by
 * the CPUs this process may run on; falls back to sysconf. Always >= 1. */
int ds_physical_cores(void);

/* n_threads <= 0: ds_physical_cores(). */
dsocr_status ds_pool_new(int n_threads, ds_pool **out, dsocr_error *err);
void ds_pool_free(ds_pool *p);
int ds_pool_threads(const ds_pool *p);

/* Runs fn over [0, n) in chunks of at least `grain` items on all threads and returns
 * when every chunk is done. Runs inline when n is small, when the pool has one thread,
 * or when called from inside a pool task (no nesting). p may be NULL (inline). */
void ds_pool_for(ds_pool *p, int64_t n, int64_t grain, ds_pool_fn fn, void *ctx);
/* Same with every claim exactly `chunk` items (the last one shorter): for streaming
 * work that should spread in small pieces, so that a thread the OS deschedules holds
 * back little of it (ds_pool_for makes ~4 chunks per thread). */
void ds_pool_for_chunks(ds_pool *p, int64_t n, int64_t chunk, ds_pool_fn fn, void *ctx);

#endif
