/* GIF, first frame, via giflib, as Pillow shows frame 0 of a GIF: a canvas of the
 * logical screen size filled with the frame's transparent index (0 when there is
 * none), the frame's indices at its offset, then the local (else global) colour
 * table; indices past the table read Pillow's default ramp (i, i, i). */
#include "image/image.h"

#include <gif_lib.h>
#include <stdlib.h>
#include <string.h>

typedef struct gif_src {
    const uint8_t *data;
    size_t size, pos;
} gif_src;

static int gif_read_mem(GifFileType *gif, GifByteType *out, int n) {
    gif_src *s = gif->UserData;
    if (n < 0) return 0;
    size_t k = (size_t)n;
    if (k > s->size - s->pos) k = s->size - s->pos;
    memcpy(out, s->data + s->pos, k);
    s->pos += k;
    return (int)k;
}

dsocr_status ds_decode_gif(const uint8_t *data, size_t size, const char *name,
                           uint64_t max_pixels, dsocr_image **out, int *orientation, dsocr_error *err) {
    *out = NULL;
    *orientation = 0;
    gif_src src = {data, size, 0};
    int gerr = 0;
    GifFileType *gif = DGifOpen(&src, gif_read_mem, &gerr);
    if (!gif) return ds_fail(err, DSOCR_ERR_FORMAT, "%s: corrupt GIF: %s", name, GifErrorString(gerr));
    dsocr_status status = DSOCR_OK;
    uint8_t *canvas = NULL, *line = NULL;
    dsocr_image *img = NULL;
    int transparent = -1, W = gif->SWidth, H = gif->SHeight;
    status = ds_image_check_size(name, W, H, max_pixels, err);
    if (status != DSOCR_OK) goto done;
    for (;;) {
        GifRecordType rt;
        if (DGifGetRecordType(gif, &rt) == GIF_ERROR) goto gif_error;
        if (rt == TERMINATE_RECORD_TYPE) {
            status = ds_fail(err, DSOCR_ERR_FORMAT, "%s: GIF without any image", name);
            goto done;
        }
        if (rt == EXTENSION_RECORD_TYPE) {
            int code;
            GifByteType *ext;
            if (DGifGetExtension(gif, &code, &ext) == GIF_ERROR) goto gif_error;
            while (ext) {
                if (code == GRAPHICS_EXT_FUNC_CODE && ext[0] >= 4) {
                    GraphicsControlBlock gcb;
                    if (DGifExtensionToGCB(ext[0], ext + 1, &gcb) == GIF_OK) transparent = gcb.TransparentColor;
                }
                code = CONTINUE_EXT_FUNC_CODE;
                if (DGifGetExtensionNext(gif, &ext) == GIF_ERROR) goto gif_error;
            }
            continue;
        }
        if (rt != IMAGE_DESC_RECORD_TYPE) continue;
        if (DGifGetImageDesc(gif) == GIF_ERROR) goto gif_error;
        GifImageDesc *fd = &gif->Image;
        if (fd->Width <= 0 || fd->Height <= 0 || fd->Width > 65535 || fd->Height > 65535) {
            status = ds_fail(err, DSOCR_ERR_FORMAT, "%s: invalid GIF frame size %dx%d", name, fd->Width, fd->Height);
            goto done;
        }
        canvas = malloc((size_t)W * H);
        line = malloc((size_t)fd->Width);
        if (!canvas || !line) {
            status = ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory for a %dx%d GIF", name, W, H);
            goto done;
        }
        memset(canvas, transparent >= 0 ? transparent : 0, (size_t)W * H);
        /* Interlaced frames store rows in four passes. */
        static const int start[4] = {0, 4, 2, 1}, step[4] = {8, 8, 4, 2};
        int npass = fd->Interlace ? 4 : 1;
        for (int p = 0; p < npass; p++) {
            for (int r = fd->Interlace ? start[p] : 0; r < fd->Height; r += fd->Interlace ? step[p] : 1) {
                if (DGifGetLine(gif, line, fd->Width) == GIF_ERROR) goto gif_error;
                int y = fd->Top + r;
                if (y < 0 || y >= H) continue;
                for (int x = 0; x < fd->Width; x++) {
                    int cx = fd->Left + x;
                    if (cx >= 0 && cx < W) canvas[(size_t)y * W + cx] = line[x];
                }
            }
        }
        ColorMapObject *cmap = fd->ColorMap ? fd->ColorMap : gif->SColorMap;
        uint8_t pal[256][3];
        for (int i = 0; i < 256; i++) pal[i][0] = pal[i][1] = pal[i][2] = (uint8_t)i;
        for (int i = 0; cmap && i < cmap->ColorCount && i < 256; i++) {
            pal[i][0] = cmap->Colors[i].Red;
            pal[i][1] = cmap->Colors[i].Green;
            pal[i][2] = cmap->Colors[i].Blue;
        }
        status = ds_image_alloc(W, H, &img, err);
        if (status != DSOCR_OK) goto done;
        for (size_t i = 0; i < (size_t)W * H; i++) memcpy(img->rgb + 3 * i, pal[canvas[i]], 3);
        goto done;
    }
gif_error:
    status = ds_fail(err, DSOCR_ERR_FORMAT, "%s: corrupt or truncated GIF: %s", name, GifErrorString(gif->Error));
done:
    DGifCloseFile(gif, &gerr);
    free(canvas);
    free(line);
    if (status != DSOCR_OK) {
        dsocr_image_free(img);
        return status;
    }
    *out = img;
    return DSOCR_OK;
}
