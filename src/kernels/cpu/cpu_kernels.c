/* Fast CPU kernels, selected at run time from what this CPU supports. */
#include <cblas.h>

#include "kernels/cpu/cpu.h"

const char *ds_kernels_cpu(ds_kernels *k) {
    __builtin_cpu_init();
    ds_cpu_has_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl");
    /* the pool parallelises over blocks; OpenBLAS runs each block on its caller */
    openblas_set_num_threads(1);
    k->linear = ds_cpu_linear;
    k->attention = ds_cpu_attention;
    return ds_cpu_has_avx512 ? "avx512" : "generic";
}
