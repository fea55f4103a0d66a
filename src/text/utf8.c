/* UTF-8 validation and lossy conversion (Unicode table 3-7 well-formed sequences). */
#include "text/utf8.h"

#include <string.h>

/* Allowed range of the second byte for each lead byte; later bytes are 80..BF. */
static int lead_info(uint8_t b, int *len, uint8_t *lo, uint8_t *hi) {
    *lo = 0x80; *hi = 0xBF;
    if (b < 0x80) { *len = 1; return 1; }
    if (b >= 0xC2 && b <= 0xDF) { *len = 2; return 1; }
    if (b >= 0xE0 && b <= 0xEF) {
        *len = 3;
        if (b == 0xE0) *lo = 0xA0;
        if (b == 0xED) *hi = 0x9F;      /* no surrogates */
        return 1;
    }
    if (b >= 0xF0 && b <= 0xF4) {
        *len = 4;
        if (b == 0xF0) *lo = 0x90;
        if (b == 0xF4) *hi = 0x8F;      /* <= U+10FFFF */
        return 1;
    }
    return 0;                           /* 80..C1, F5..FF never start a sequence */
}

size_t ds_utf8_seq(const uint8_t *s, size_t n, size_t *need) {
    *need = 0;
    if (n == 0) return 0;
    int len;
    uint8_t lo, hi;
    if (!lead_info(s[0], &len, &lo, &hi)) return 0;
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n) { *need = (size_t)len; return 0; }
        uint8_t a = i == 1 ? lo : 0x80, z = i == 1 ? hi : 0xBF;
        if (s[i] < a || s[i] > z) return 0;
    }
    return (size_t)len;
}

/* Length of the maximal invalid subpart at s: the lead byte plus the
 * continuation bytes that were still acceptable (at least 1). */
static size_t invalid_subpart(const uint8_t *s, size_t n) {
    int len;
    uint8_t lo, hi;
    if (!lead_info(s[0], &len, &lo, &hi)) return 1;
    size_t i = 1;
    while (i < (size_t)len && i < n) {
        uint8_t a = i == 1 ? lo : 0x80, z = i == 1 ? hi : 0xBF;
        if (s[i] < a || s[i] > z) break;
        i++;
    }
    return i;
}

size_t ds_utf8_validate(const uint8_t *s, size_t n) {
    size_t i = 0, need;
    while (i < n) {
        if (s[i] < 0x80) { i++; continue; }
        size_t l = ds_utf8_seq(s + i, n - i, &need);
        if (!l) return i;
        i += l;
    }
    return n;
}

uint32_t ds_utf8_decode(const uint8_t *s, size_t len) {
    switch (len) {
    case 1: return s[0];
    case 2: return ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    case 3: return ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    default: return ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
                    ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    }
}

size_t ds_utf8_encode(uint32_t cp, uint8_t out[4]) {
    if (cp < 0x80) { out[0] = (uint8_t)cp; return 1; }
    if (cp < 0x800) { out[0] = (uint8_t)(0xC0 | (cp >> 6)); out[1] = (uint8_t)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12)); out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18)); out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

size_t ds_utf8_lossy(const uint8_t *in, size_t n, int final, uint8_t *out, size_t *consumed) {
    static const uint8_t fffd[3] = {0xEF, 0xBF, 0xBD};
    size_t i = 0, o = 0, need;
    while (i < n) {
        if (in[i] < 0x80) { out[o++] = in[i++]; continue; }
        size_t l = ds_utf8_seq(in + i, n - i, &need);
        if (l) { memcpy(out + o, in + i, l); o += l; i += l; continue; }
        if (need && !final) break;          /* may still complete: keep for later */
        memcpy(out + o, fffd, 3); o += 3;
        i += need ? n - i : invalid_subpart(in + i, n - i);
    }
    *consumed = i;
    return o;
}
