/* Batched decode GEMV: several independent linears (q/k/v, the gate and up of every
 * chosen expert, their downs) as ONE pool job over the rows of all of them.
 *
 * A decode token is ~300 small GEMVs (an expert's gate is 896 x 1280); run one by one,
 * each pays a fork/join over the pool and splits a 2 MB matrix in two, so the threads
 * spend much of the step waiting for each other. Here the rows of every job are laid
 * end to end in groups of 4 (the row kernels' step) and handed out in chunks; a thread
 * lays x out for a job's row kernel once (ds_cpu_*_gemv_prep) and keeps it while its
 * chunks stay on jobs with the same x (q/k/v share x, so do all gates and ups). */
#include <string.h>

#include "kernels/cpu/cpu.h"

#define GROUP_ROWS 4                 /* rows per item: the row kernels' step */
#define MAX_BATCH_JOBS 64            /* jobs per pool pass (a longer batch takes several) */
#define CHUNK_BYTES ((size_t)128 << 10)  /* weight bytes per claimed chunk (see grain below) */

/* What a thread last laid out in its scratch, so that jobs sharing x skip the prep.
 * One cache line per thread: the threads write theirs on every job change. */
typedef struct {
    const float *x;
    int M, K;
    ds_dtype dtype;
    char pad[64 - sizeof(const float *) - 2 * sizeof(int) - sizeof(ds_dtype)];
} prep_key;

typedef struct {
    ds_backend *be;
    int n;
    const ds_linear_job *jobs;
    int64_t first[MAX_BATCH_JOBS + 1];  /* first item (row group) of each job */
    prep_key *prepared;                 /* [n_threads] */
} batch_ctx;

int ds_cpu_gemv_ok(const ds_linear_job *J) {
#if defined(__x86_64__)
    if (J->M <= 0 || J->M >= DS_GEMV_MAX_M) return 0;
    if (J->W->dtype == DS_BF16 && (ds_cpu_has_avx512 || ds_cpu_has_avx2)) return (size_t)J->M * J->K + 64 <= DS_SCRATCH_FLOATS;
    if (ds_dtype_is_x4(J->W->dtype) && (!ds_cpu_has_avx512vnni || J->n0 % 4)) return 0;   /* kernels: whole groups */
    if ((ds_cpu_has_avx512 || ds_cpu_has_avx2) && ds_dtype_is_quant(J->W->dtype)) return ds_cpu_quant_gemv_prep_floats(J) + 64 <= DS_SCRATCH_FLOATS;
#else
    (void)J;
#endif
    return 0;
}

#if defined(__x86_64__)
/* Rows [r0, r1) of job J on thread tid, preparing x first unless it is already laid out. */
static void job_rows(batch_ctx *C, const ds_linear_job *J, int64_t r0, int64_t r1, int tid) {
    float *buf = ds_scratch(C->be, tid);
    prep_key *k = &C->prepared[tid];
    int bf16 = J->W->dtype == DS_BF16;
    if (k->x != J->x || k->M != J->M || k->K != J->K || k->dtype != J->W->dtype) {
        if (bf16) ds_cpu_bf16_gemv_prep(J, buf);
        else ds_cpu_quant_gemv_prep(J, buf);
        *k = (prep_key){.x = J->x, .M = J->M, .K = J->K, .dtype = J->W->dtype};
    }
    if (bf16 && !ds_cpu_has_avx512) ds_cpu_bf16_gemv_rows_avx2(J, buf, r0, r1);
    else if (bf16) ds_cpu_bf16_gemv_rows(J, buf, r0, r1);
    else ds_cpu_quant_gemv_rows(J, buf, r0, r1);
}

/* items = groups of GROUP_ROWS rows, job after job */
static void batch_task(void *ctx, int64_t i0, int64_t i1, int tid) {
    batch_ctx *C = ctx;
    int j = 0;
    while (C->first[j + 1] <= i0) j++;
    for (; j < C->n && C->first[j] < i1; j++) {
        const ds_linear_job *J = &C->jobs[j];
        int64_t N = ds_job_n1(J) - J->n0;
        int64_t g0 = i0 > C->first[j] ? i0 - C->first[j] : 0;
        int64_t g1 = (i1 < C->first[j + 1] ? i1 : C->first[j + 1]) - C->first[j];
        int64_t r1 = g1 * GROUP_ROWS < N ? g1 * GROUP_ROWS : N;
        job_rows(C, J, g0 * GROUP_ROWS, r1, tid);
    }
}

/* One pool pass over n <= MAX_BATCH_JOBS GEMV jobs. */
static void gemv_pass(ds_backend *be, int n, const ds_linear_job *jobs) {
    prep_key prepared[64];   /* threads beyond 64 would share nothing: see below */
    batch_ctx C = {.be = be, .n = n, .jobs = jobs, .prepared = prepared};
    size_t row_bytes = 0;
    C.first[0] = 0;
    for (int i = 0; i < n; i++) {
        int64_t N = ds_job_n1(&jobs[i]) - jobs[i].n0;
        C.first[i + 1] = C.first[i] + (N + GROUP_ROWS - 1) / GROUP_ROWS;
        size_t rb = ds_dtype_bytes(jobs[i].W->dtype, jobs[i].W->stride[0]);
        if (rb > row_bytes) row_bytes = rb;
    }
    memset(prepared, 0, sizeof prepared);
    /* Chunks of ~CHUNK_BYTES of weights: small enough that a thread the OS deschedules
     * holds back little work, large enough that claiming costs nothing. */
    int64_t grain = (int64_t)(CHUNK_BYTES / (GROUP_ROWS * (row_bytes ? row_bytes : 1)));
    if (grain < 1) grain = 1;
    if (be->n_threads > 64) {   /* more threads than prep slots: run serially (never on these machines) */
        batch_task(&C, 0, C.first[n], 0);
        return;
    }
    ds_pool_for_chunks(be->pool, C.first[n], grain, batch_task, &C);
}
#endif

void ds_cpu_linear_batch(ds_backend *be, int n, const ds_linear_job *jobs) {
#if defined(__x86_64__)
    /* GEMV jobs go together (in passes of MAX_BATCH_JOBS); the others (prefill rows,
     * f32 / f16 weights) one by one through ds_cpu_linear, which threads each. */
    ds_linear_job gemv[MAX_BATCH_JOBS];
    int ng = 0;
    for (int i = 0; i < n; i++) {
        const ds_linear_job *J = &jobs[i];
        if (J->M <= 0 || ds_job_n1(J) <= J->n0) continue;
        if (!ds_cpu_gemv_ok(J)) {
            ds_cpu_linear(be, J->y, J->x, J->M, J->K, J->W, J->b, J->n0, ds_job_n1(J));
            continue;
        }
        gemv[ng++] = *J;
        if (ng == MAX_BATCH_JOBS) { gemv_pass(be, ng, gemv); ng = 0; }
    }
    if (ng) gemv_pass(be, ng, gemv);
#else
    for (int i = 0; i < n; i++) {
        const ds_linear_job *J = &jobs[i];
        ds_cpu_linear(be, J->y, J->x, J->M, J->K, J->W, J->b, J->n0, ds_job_n1(J));
    }
#endif
}
