/* safetensors header and data views (ds_st_open_memory): every accepted file must
 * give views that lie inside the buffer, findable by name, with sane shapes. */
#include "fuzz_util.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ds_st_file *f = NULL;
    dsocr_error err;
    dsocr_status s = ds_st_open_memory(data, size, "fuzz.safetensors", &f, &err);
    fuzz_check_error(s, &err);
    if (s != DSOCR_OK) { FUZZ_CHECK(f == NULL); return 0; }
    int n = ds_st_count(f);
    FUZZ_CHECK(n >= 0);
    for (int i = 0; i < n; i++) {
        const ds_tensor *t = ds_st_at(f, i);
        FUZZ_CHECK(t && t->name && t->ndim >= 0 && t->ndim <= DS_MAX_DIMS);
        FUZZ_CHECK(ds_st_find(f, t->name) == t);
        int64_t numel = ds_tensor_numel(t);
        FUZZ_CHECK(numel >= 0);
        size_t bytes = (size_t)numel * ds_dtype_size(t->dtype);
        const uint8_t *p = t->data;
        uint64_t off = ds_st_offset(f, t);
        FUZZ_CHECK(off <= size && bytes <= size - off);
        if (bytes) {
            FUZZ_CHECK(p >= data && p + bytes <= data + size);
            /* Touch the first and last byte: ASan checks the view lies in the buffer. */
            volatile uint8_t sink = p[0] ^ p[bytes - 1];
            (void)sink;
        }
    }
    (void)ds_st_metadata(f, "format");
    (void)ds_st_find(f, "");
    ds_st_close(f);
    return 0;
}
