/* core: status messages, tensor helpers, bf16 rounding against a double reference. */
#include <math.h>
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"
#include "test_util.h"

/* Reference bf16 rounding: nearest representable value, ties to even mantissa. */
static float ref_round_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t lo = u & 0xffff0000u, hi = lo + 0x10000u;
    float flo, fhi;
    memcpy(&flo, &lo, 4);
    memcpy(&fhi, &hi, 4);
    double dlo = fabs((double)f - flo), dhi = fabs((double)fhi - f);
    if (dlo < dhi) return flo;
    if (dhi < dlo) return fhi;
    return ((lo >> 16) & 1) ? fhi : flo;
}

int main(void) {
    dsocr_error e;
    CHECK_EQ_INT(ds_fail(&e, DSOCR_ERR_FORMAT, "%s: tensor %s at byte %d", "a.safetensors", "w", 12), DSOCR_ERR_FORMAT);
    CHECK_STR(e.message, "a.safetensors: tensor w at byte 12");
    ds_wrap(&e, "loading %s: ", "dir");
    CHECK_STR(e.message, "loading dir: a.safetensors: tensor w at byte 12");
    CHECK_EQ_INT(e.code, DSOCR_ERR_FORMAT);
    CHECK_EQ_INT(ds_fail(NULL, DSOCR_ERR_IO, "x"), DSOCR_ERR_IO);

    uint64_t s = 1;
    for (int i = 0; i < 200000; i++) {
        uint32_t u = (uint32_t)tu_rand_u64(&s);
        float f;
        memcpy(&f, &u, 4);
        if (isnan(f) || isinf(f) || fabsf(f) > 0x1.fep+127f) continue; /* overflow region: checked below */
        float r = ds_round_bf16(f), want = ref_round_bf16(f);
        if (memcmp(&r, &want, 4) != 0) { CHECK_MSG(0, "bf16(%a) = %a, want %a", f, r, want); break; }
    }
    CHECK(ds_round_bf16(1.0f) == 1.0f);
    CHECK(ds_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(isnan(ds_round_bf16(NAN)));
    CHECK(isinf(ds_round_bf16(0x1.ffp+127f)));           /* past the last halfway point */
    CHECK(ds_round_bf16(0x1.fe7p+127f) == 0x1.fep+127f); /* below it */
    CHECK(ds_f16_to_f32(0x3c00) == 1.0f);
    CHECK(ds_f16_to_f32(0xc000) == -2.0f);
    CHECK(ds_f16_to_f32(0x0001) == ldexpf(1.0f, -24));

    ds_tensor t = {.dtype = DS_BF16, .ndim = 3, .shape = {2, 3, 4}};
    ds_tensor_set_contiguous(&t);
    CHECK_EQ_INT(t.stride[0], 12);
    CHECK_EQ_INT(ds_tensor_numel(&t), 24);
    CHECK(ds_tensor_is_contiguous(&t));
    char buf[64];
    CHECK_STR(ds_shape_str(&t, buf, sizeof buf), "[2, 3, 4]");
    CHECK_EQ_INT(ds_dtype_size(DS_BF16), 2);
    return tu_done("test_core");
}
