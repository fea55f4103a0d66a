/* Fast CPU kernels, selected at run time from what this CPU supports:
 * - x86-64: AVX-512 (f, bw, vl; VNNI for the x4 quantized GEMV) GEMV, widening and elementwise kernels; AVX2 +
 *   FMA GEMV and widening where AVX-512 is absent;
 * - aarch64: NEON (baseline there) GEMV, widening and elementwise kernels; the
 *   dotprod and bf16 extensions are probed with getauxval and named;
 * - anywhere: the blocked linear, conv, flash attention and rel-pos on ds_cpu_sgemm
 *   (OpenBLAS, or our blocked GEMM in -DDSOCR_NO_BLAS builds), and the scalar
 *   reference kernels for everything else. */
#if !defined(DSOCR_NO_BLAS)
#include <cblas.h>
#endif
#if defined(__aarch64__)
#include <sys/auxv.h>
#endif

#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu.h"

int ds_cpu_has_neon, ds_cpu_has_dotprod, ds_cpu_has_bf16;

/* Fills the GEMM-based entries, which run on any CPU. */
static void kernels_portable(ds_kernels *k) {
#if !defined(DSOCR_NO_BLAS)
    /* the pool parallelises over blocks; OpenBLAS runs each call on its caller */
    openblas_set_num_threads(1);
#endif
    k->linear = ds_cpu_linear;
    k->linear_batch = ds_cpu_linear_batch;
    k->conv2d = ds_cpu_conv2d;
    k->attention = ds_cpu_attention;
    k->relpos = ds_cpu_relpos;
}

#if defined(__x86_64__)
/* DSOCR_CPU=avx2 or generic caps the kernels below what the CPU has: the tests run
 * the AVX2 and scalar paths on AVX-512 machines this way. Any other value is ignored
 * (a typo must not silently make everything scalar); `dsocr -v` names what was picked. */
static const char *kernels_x86(ds_kernels *k) {
    __builtin_cpu_init();
    const char *cap = getenv("DSOCR_CPU");   /* "avx2" or "generic"; any other value caps nothing */
    int allow512 = !cap || (strcmp(cap, "avx2") && strcmp(cap, "generic")), allow2 = allow512 || !strcmp(cap, "avx2");
    ds_cpu_has_avx2 = allow2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                      __builtin_cpu_supports("f16c");
    ds_cpu_has_avx512 = allow512 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl");
    ds_cpu_has_avx512vnni = ds_cpu_has_avx512 && __builtin_cpu_supports("avx512vnni");
    if (!ds_cpu_has_avx512) return ds_cpu_has_avx2 ? "avx2" : "generic";
    k->layernorm = ds_cpu_layernorm;
    k->rmsnorm = ds_cpu_rmsnorm;
    k->softmax = ds_cpu_softmax;
    k->gelu_erf = ds_cpu_gelu_erf;
    k->quick_gelu = ds_cpu_quick_gelu;
    k->silu = ds_cpu_silu;
    k->silu_mul = ds_cpu_silu_mul;
    k->quant_x4 = ds_cpu_has_avx512vnni;
    k->attention_kv16 = ds_cpu_attention_kv16;   /* the decode kernel reads bf16 K/V */
    return ds_cpu_has_avx512vnni ? "avx512-vnni" : "avx512";
}
#endif

#if defined(__aarch64__)
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1UL << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#ifndef HWCAP2_BF16
#define HWCAP2_BF16 (1UL << 14)
#endif

static const char *kernels_arm(ds_kernels *k) {
    unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    /* Advanced SIMD is mandatory on aarch64 Linux; the bit is checked all the same */
    ds_cpu_has_neon = (hw & HWCAP_ASIMD) != 0;
    ds_cpu_has_dotprod = ds_cpu_has_neon && (hw & HWCAP_ASIMDDP) != 0;
    ds_cpu_has_bf16 = ds_cpu_has_neon && (hw2 & HWCAP2_BF16) != 0;
    if (!ds_cpu_has_neon) return "generic";
    k->layernorm = ds_neon_layernorm;
    k->rmsnorm = ds_neon_rmsnorm;
    k->softmax = ds_neon_softmax;
    k->gelu_erf = ds_neon_gelu_erf;
    k->quick_gelu = ds_neon_quick_gelu;
    k->silu = ds_neon_silu;
    k->silu_mul = ds_neon_silu_mul;
    static const char *labels[4] = {"neon", "neon-dotprod", "neon-bf16", "neon-dotprod-bf16"};
    return labels[ds_cpu_has_dotprod + 2 * ds_cpu_has_bf16];
}
#endif

const char *ds_kernels_cpu(ds_kernels *k) {
    kernels_portable(k);
#if defined(__x86_64__)
    return kernels_x86(k);
#elif defined(__aarch64__)
    return kernels_arm(k);
#else
    return "generic";
#endif
}
