/* Fast CPU kernels, selected at run time from what this CPU supports. */
#include <cblas.h>

#include "kernels/cpu/cpu.h"

const char *ds_kernels_cpu(ds_kernels *k) {
    __builtin_cpu_init();
    ds_cpu_has_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl");
    /* the pool parallelises over blocks; OpenBLAS runs each call on its caller */
    openblas_set_num_threads(1);
    /* BLAS-based: any CPU (OpenBLAS dispatches itself) */
    k->linear = ds_cpu_linear;
    k->conv2d = ds_cpu_conv2d;
    k->attention = ds_cpu_attention;
    k->relpos = ds_cpu_relpos;
    if (!ds_cpu_has_avx512) return "generic";
    k->layernorm = ds_cpu_layernorm;
    k->rmsnorm = ds_cpu_rmsnorm;
    k->softmax = ds_cpu_softmax;
    k->gelu_erf = ds_cpu_gelu_erf;
    k->quick_gelu = ds_cpu_quick_gelu;
    k->silu = ds_cpu_silu;
    k->silu_mul = ds_cpu_silu_mul;
    return "avx512";
}
