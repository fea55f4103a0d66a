/* JPEG via libjpeg-turbo with its defaults (ISLOW IDCT, fancy upsampling), as
 * Pillow decodes it:
 *   1 component -> "L";  3 components -> "RGB" (libjpeg's YCbCr->RGB);
 *   4 components -> "CMYK" read with rawmode "CMYK;I": Pillow ALWAYS assumes Adobe
 *   (inverted) CMYK, whatever the markers say; then convert("RGB") is Pillow's
 *   cmyk2rgb: nk = 255 - k; r = nk - MULDIV255(c, nk) with
 *   MULDIV255(a, b) = ((a*b + 128) >> 8 + (a*b + 128)) >> 8.
 * A truncated file is an error (Pillow: "image file is truncated"); a premature
 * end of entropy data is an error too, although libjpeg only warns. */
#include "image/image.h"

#include <stdio.h>  /* jpeglib.h needs FILE */
#include <jpeglib.h>
#include <jerror.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct jpeg_state {
    struct jpeg_error_mgr pub;      /* first: libjpeg casts cinfo->err to this */
    jmp_buf jump;
    struct jpeg_source_mgr src;
    const char *name;
    uint64_t max_pixels;
    dsocr_error *err;
    dsocr_status status;            /* set when we fail for our own reasons */
    char msg[JMSG_LENGTH_MAX];
    JSAMPLE *row;
    dsocr_image *img;
    int orientation;
} jpeg_state;

static void jpeg_on_error(j_common_ptr cinfo) {
    jpeg_state *st = (jpeg_state *)cinfo->err;
    cinfo->err->format_message(cinfo, st->msg);
    longjmp(st->jump, 1);
}

/* Warnings: tolerated (as Pillow does) except those that mean missing data. */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    if (level == -1 && (cinfo->err->msg_code == JWRN_HIT_MARKER || cinfo->err->msg_code == JWRN_JPEG_EOF))
        jpeg_on_error(cinfo);
    if (level == -1) cinfo->err->num_warnings++;
}

static void jpeg_src_init(j_decompress_ptr cinfo) { (void)cinfo; }
static void jpeg_src_term(j_decompress_ptr cinfo) { (void)cinfo; }

/* The whole file is in the buffer from the start: asking for more means truncation. */
static boolean jpeg_src_fill(j_decompress_ptr cinfo) {
    jpeg_state *st = (jpeg_state *)cinfo->err;
    snprintf(st->msg, sizeof st->msg, "unexpected end of file (truncated)");
    longjmp(st->jump, 1);
    return FALSE;
}

static void jpeg_src_skip(j_decompress_ptr cinfo, long n) {
    if (n <= 0) return;
    if ((size_t)n > cinfo->src->bytes_in_buffer) jpeg_src_fill(cinfo);
    cinfo->src->next_input_byte += n;
    cinfo->src->bytes_in_buffer -= (size_t)n;
}

static int jpeg_decode_guarded(jpeg_state *st, struct jpeg_decompress_struct *cinfo,
                               const uint8_t *data, size_t size) {
    if (setjmp(st->jump)) return -1;
    jpeg_create_decompress(cinfo);
    st->src.init_source = jpeg_src_init;
    st->src.fill_input_buffer = jpeg_src_fill;
    st->src.skip_input_data = jpeg_src_skip;
    st->src.resync_to_restart = jpeg_resync_to_restart;
    st->src.term_source = jpeg_src_term;
    st->src.next_input_byte = data;
    st->src.bytes_in_buffer = size;
    cinfo->src = &st->src;
    jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xffff);
    jpeg_read_header(cinfo, TRUE);

    st->status = ds_image_check_size(st->name, cinfo->image_width, cinfo->image_height, st->max_pixels, st->err);
    if (st->status != DSOCR_OK) return -1;
    /* Pillow takes the first APP1 that starts with "Exif\0\0". */
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && !memcmp(m->data, "Exif\0\0", 6)) {
            st->orientation = ds_exif_orientation(m->data, m->data_length);
            break;
        }
    }
    int nc = cinfo->num_components;
    if (nc == 1) cinfo->out_color_space = JCS_GRAYSCALE;
    else if (nc == 3) cinfo->out_color_space = JCS_RGB;
    else if (nc == 4) cinfo->out_color_space = JCS_CMYK;
    else {
        st->status = ds_fail(st->err, DSOCR_ERR_UNSUPPORTED, "%s: JPEG with %d colour components", st->name, nc);
        return -1;
    }
    jpeg_start_decompress(cinfo);
    int w = (int)cinfo->output_width, h = (int)cinfo->output_height, oc = cinfo->output_components;
    st->row = malloc((size_t)w * oc);
    if (!st->row || ds_image_alloc(w, h, &st->img, NULL) != DSOCR_OK) {
        st->status = ds_fail(st->err, DSOCR_ERR_NOMEM, "%s: out of memory for a %dx%d JPEG", st->name, w, h);
        return -1;
    }
    while ((int)cinfo->output_scanline < h) {
        uint8_t *out = st->img->rgb + (size_t)cinfo->output_scanline * w * 3;
        JSAMPROW rows[1] = {st->row};
        if (jpeg_read_scanlines(cinfo, rows, 1) != 1) {
            snprintf(st->msg, sizeof st->msg, "no scanline returned");
            return -1;
        }
        const uint8_t *in = st->row;
        for (int x = 0; x < w; x++, out += 3) {
            if (oc == 1) {
                out[0] = out[1] = out[2] = in[x];
            } else if (oc == 3) {
                memcpy(out, in + 3 * x, 3);
            } else {
                const uint8_t *p = in + 4 * x;          /* "CMYK;I": stored values inverted */
                int nk = 255 - (255 - p[3]);
                for (int ch = 0; ch < 3; ch++) {
                    int c = 255 - p[ch];
                    int t = c * nk + 128;               /* MULDIV255(c, nk) */
                    int v = nk - (((t >> 8) + t) >> 8);
                    out[ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
            }
        }
    }
    jpeg_finish_decompress(cinfo);
    return 0;
}

dsocr_status ds_decode_jpeg(const uint8_t *data, size_t size, const char *name,
                            uint64_t max_pixels, dsocr_image **out, int *orientation, dsocr_error *err) {
    *out = NULL;
    *orientation = 0;
    struct jpeg_decompress_struct cinfo;
    memset(&cinfo, 0, sizeof cinfo);
    jpeg_state st;
    memset(&st, 0, sizeof st);
    st.name = name;
    st.max_pixels = max_pixels;
    st.err = err;
    cinfo.err = jpeg_std_error(&st.pub);
    st.pub.error_exit = jpeg_on_error;
    st.pub.emit_message = jpeg_on_message;
    int rc = jpeg_decode_guarded(&st, &cinfo, data, size);
    jpeg_destroy_decompress(&cinfo);
    free(st.row);
    if (rc != 0) {
        dsocr_image_free(st.img);
        if (st.status != DSOCR_OK) return st.status;
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: corrupt JPEG: %s", name, st.msg);
    }
    *out = st.img;
    *orientation = st.orientation;
    return DSOCR_OK;
}
