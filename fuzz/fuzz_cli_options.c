/* The CLI's option-value parsers (tools/cli.c: cli_parse_int, cli_parse_u64,
 * cli_parse_float): the first byte picks the parser and its bounds, the rest is the
 * text. Accepted values lie in the bounds; rejected ones leave the output alone.
 * (Their error messages go to stderr: run with -close_fd_mask=2.) */
#include <math.h>

#include "cli.h"
#include "fuzz_util.h"

static const long int_bounds[][2] = {{0, 1024}, {2, 64}, {1, 1 << 20}, {0, 1000}, {-5, 5}, {0, 0}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_reader r = {data, size};
    unsigned pick = fuzz_u8(&r);
    char *text = fuzz_strndup(r.p, r.n);
    const char *arg = (pick & 0x80) && !r.n ? NULL : text;   /* a missing value, as getopt can give */
    switch (pick % 3) {
    case 0: {
        const long *b = int_bounds[(pick / 3) % (sizeof int_bounds / sizeof *int_bounds)];
        int v = 12345;
        if (cli_parse_int("--int", arg, b[0], b[1], &v) == 0) FUZZ_CHECK(v >= b[0] && v <= b[1]);
        else FUZZ_CHECK(v == 12345);
        break;
    }
    case 1: {
        uint64_t v = 777;
        if (cli_parse_u64("--seed", arg, &v) != 0) FUZZ_CHECK(v == 777);
        break;
    }
    default: {
        double lo = (pick / 3) & 1 ? 0.0 : -1e30, hi = (pick / 3) & 2 ? 1.0 : 100.0;
        float v = -7.0f;
        if (cli_parse_float("--float", arg, lo, hi, &v) == 0) FUZZ_CHECK(isfinite(v) && v >= (float)lo && v <= (float)hi);
        else FUZZ_CHECK(v == -7.0f);
        break;
    }
    }
    free(text);
    return 0;
}
