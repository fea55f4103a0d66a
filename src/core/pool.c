#include "core/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Polls (each a PAUSE, ~25 ns on this machine's Zen 4) before a thread sleeps on a
 * condition variable: a worker between jobs, and the caller waiting for the workers
 * at the end of a job. Kept short (~5 µs): on a shared machine (autogroup
 * scheduling) all our threads share one group's CPU time, so a spinning worker slows
 * the caller and a spinning caller keeps a descheduled worker from finishing its
 * chunk; a futex wake-up per job is cheap next to that (decode issues ~60 jobs per
 * token). 20000 polls (0.5 ms) made 2 threads slower than 1 on the loaded machine
 * (tests/bench_decode pool and decode). */
#define POOL_SPIN 200

/* Job state in one atomic word, so that a worker can join a job only while it is
 * open: bits 0-15 = workers inside the job, bit 16 = closed, bits 32-63 = job number.
 * The caller closes the job once every chunk is claimed and waits only for workers
 * that joined; a worker the OS has not scheduled yet is not waited for (this matters
 * on busy machines, where waking a sleeping thread can take milliseconds). */
#define ST_ACTIVE_MASK 0xffffull
#define ST_CLOSED (1ull << 16)
#define ST_GEN(s) ((s) >> 32)

/* The fields every thread writes (next, state) sit on cache lines of their own, away
 * from the job description that workers only read: otherwise each claim would also
 * invalidate the line the spinning workers poll. */
struct ds_pool {
    int n_threads;
    pthread_t *threads;
    int n_started;
    pthread_mutex_t mu;         /* guards sleeping and waking */
    pthread_cond_t wake, done;
    pthread_mutex_t call_mu;    /* one ds_pool_for at a time */
    /* current job: written by the caller only while no worker is inside a job */
    ds_pool_fn fn;
    void *ctx;
    int64_t n, chunk;
    atomic_int quit;
    atomic_int sleepers;        /* workers waiting on `wake` (or about to) */
    _Alignas(64) atomic_llong next;    /* next unclaimed item */
    _Alignas(64) atomic_ullong state;  /* job number | closed | active workers */
    char pad[64 - sizeof(atomic_ullong)];
};

typedef struct { ds_pool *p; int tid; } worker_arg;

static _Thread_local int tl_in_pool_task;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void run_chunks(ds_pool *p, int tid) {
    for (;;) {
        int64_t i0 = atomic_fetch_add(&p->next, p->chunk);
        if (i0 >= p->n) break;
        int64_t i1 = i0 + p->chunk < p->n ? i0 + p->chunk : p->n;
        p->fn(p->ctx, i0, i1, tid);
    }
}

/* Enters job `gen` if it is still open; returns 1 when joined. */
static int join_job(ds_pool *p, uint64_t gen) {
    unsigned long long s = atomic_load(&p->state);
    while (ST_GEN(s) == gen && !(s & ST_CLOSED))
        if (atomic_compare_exchange_weak(&p->state, &s, s + 1)) return 1;
    return 0;
}

static void leave_job(ds_pool *p) {
    uint64_t s = atomic_fetch_sub(&p->state, 1) - 1;
    if ((s & ST_CLOSED) && (s & ST_ACTIVE_MASK) == 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

static void *worker_main(void *arg) {
    worker_arg *wa = arg;
    ds_pool *p = wa->p;
    int tid = wa->tid;
    free(wa);
    tl_in_pool_task = 1;
    uint64_t seen = 0;
    for (;;) {
        uint64_t g = ST_GEN(atomic_load(&p->state));
        for (int s = 0; s < POOL_SPIN && g == seen && !atomic_load(&p->quit); s++) {
            cpu_relax();
            g = ST_GEN(atomic_load(&p->state));
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while ((g = ST_GEN(atomic_load(&p->state))) == seen && !atomic_load(&p->quit))
                pthread_cond_wait(&p->wake, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->quit)) return NULL;
        seen = g;
        if (!join_job(p, g)) continue;    /* already finished without us */
        run_chunks(p, tid);
        leave_job(p);
    }
}

/* ---- core count ------------------------------------------------------------ */

int ds_physical_cores(void) {
    int n = 0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        enum { MAX_CORES = 1024 };
        long long seen[MAX_CORES]; /* physical id << 32 | core id */
        long long phys = -1, core = -1;
        char line[512];
        while (fgets(line, sizeof line, f)) {
            long long v;
            if (sscanf(line, "physical id : %lld", &v) == 1) phys = v;
            else if (sscanf(line, "core id : %lld", &v) == 1) core = v;
            else if (line[0] == '\n' && phys >= 0 && core >= 0) {
                long long key = (phys << 32) | core;
                int found = 0;
                for (int i = 0; i < n; i++) if (seen[i] == key) { found = 1; break; }
                if (!found && n < MAX_CORES) seen[n++] = key;
                phys = core = -1;
            }
        }
        if (phys >= 0 && core >= 0) { /* last block without a trailing blank line */
            long long key = (phys << 32) | core;
            int found = 0;
            for (int i = 0; i < n; i++) if (seen[i] == key) { found = 1; break; }
            if (!found && n < MAX_CORES) seen[n++] = key;
        }
        fclose(f);
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0) n = online > 0 ? (int)online : 1;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int allowed = CPU_COUNT(&set);
        if (allowed > 0 && allowed < n) n = allowed;
    }
    return n > 0 ? n : 1;
}

/* ---- pool ----------------------------------------------------------------- */

dsocr_status ds_pool_new(int n_threads, ds_pool **out, dsocr_error *err) {
    *out = NULL;
    if (n_threads <= 0) n_threads = ds_physical_cores();
    if (n_threads > 1024) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "thread pool: %d threads is too many", n_threads);
    ds_pool *p = aligned_alloc(_Alignof(ds_pool), sizeof *p);   /* sizeof is a multiple of 64 */
    if (!p) return ds_fail(err, DSOCR_ERR_NOMEM, "thread pool: out of memory");
    memset(p, 0, sizeof *p);
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->call_mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
        if (!p->threads) { ds_pool_free(p); return ds_fail(err, DSOCR_ERR_NOMEM, "thread pool: out of memory"); }
        for (int t = 1; t < n_threads; t++) {
            worker_arg *wa = malloc(sizeof *wa);
            if (!wa) { ds_pool_free(p); return ds_fail(err, DSOCR_ERR_NOMEM, "thread pool: out of memory"); }
            wa->p = p;
            wa->tid = t;
            int rc = pthread_create(&p->threads[t - 1], NULL, worker_main, wa);
            if (rc != 0) {
                free(wa);
                ds_pool_free(p);
                return ds_fail(err, DSOCR_ERR_INTERNAL, "thread pool: cannot start thread %d of %d: %s",
                               t, n_threads, strerror(rc));
            }
            p->n_started++;
        }
    }
    *out = p;
    return DSOCR_OK;
}

void ds_pool_free(ds_pool *p) {
    if (!p) return;
    if (p->n_started > 0) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->quit, 1);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
        for (int t = 0; t < p->n_started; t++) pthread_join(p->threads[t], NULL);
    }
    free(p->threads);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->call_mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p);
}

int ds_pool_threads(const ds_pool *p) { return p ? p->n_threads : 1; }

/* Runs fn over [0, n) in claims of `chunk` items on every thread that is awake. */
static void run_job(ds_pool *p, int64_t n, int64_t chunk, ds_pool_fn fn, void *ctx) {
    pthread_mutex_lock(&p->call_mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->chunk = chunk;
    atomic_store(&p->next, 0);
    /* open the next job (no worker is inside one now); wake the sleepers, if any (a
     * worker counts itself a sleeper under mu before its last look at state) */
    uint64_t gen = ST_GEN(atomic_load(&p->state)) + 1;
    atomic_store(&p->state, gen << 32);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }

    tl_in_pool_task = 1;
    run_chunks(p, 0);
    tl_in_pool_task = 0;

    /* every chunk is claimed: close the job, then wait for the workers inside it */
    uint64_t s = atomic_fetch_or(&p->state, ST_CLOSED) | ST_CLOSED;
    for (int i = 0; i < POOL_SPIN && (s & ST_ACTIVE_MASK); i++) { cpu_relax(); s = atomic_load(&p->state); }
    if (s & ST_ACTIVE_MASK) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->state) & ST_ACTIVE_MASK) pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_unlock(&p->call_mu);
}

void ds_pool_for(ds_pool *p, int64_t n, int64_t grain, ds_pool_fn fn, void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    if (!p || p->n_threads == 1 || n <= grain || tl_in_pool_task) {
        fn(ctx, 0, n, 0);
        return;
    }
    /* ~4 chunks per thread balances uneven work without much claiming traffic */
    int64_t chunk = (n + 4 * p->n_threads - 1) / (4 * p->n_threads);
    run_job(p, n, chunk > grain ? chunk : grain, fn, ctx);
}

void ds_pool_for_chunks(ds_pool *p, int64_t n, int64_t chunk, ds_pool_fn fn, void *ctx) {
    if (n <= 0) return;
    if (chunk < 1) chunk = 1;
    if (!p || p->n_threads == 1 || n <= chunk || tl_in_pool_task) {
        fn(ctx, 0, n, 0);
        return;
    }
    run_job(p, n, chunk, fn, ctx);
}
