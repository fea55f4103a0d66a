/* Task prompts and the prompt id sequence (spec 5.1, 5.2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "text/prompt.h"
#include "text/utf8.h"

static const char IMAGE_MARK[] = "<image>";

dsocr_status ds_task_prompt(dsocr_task task, const char *ref, char **out, dsocr_error *err) {
    const char *fixed = NULL;
    switch (task) {
    case DSOCR_TASK_MARKDOWN: fixed = "<image>\n<|grounding|>Convert the document to markdown."; break;
    case DSOCR_TASK_OCR:      fixed = "<image>\n<|grounding|>OCR this image."; break;
    case DSOCR_TASK_FREE:     fixed = "<image>\nFree OCR."; break;
    case DSOCR_TASK_FIGURE:   fixed = "<image>\nParse the figure."; break;
    case DSOCR_TASK_DESCRIBE: fixed = "<image>\nDescribe this image in detail."; break;
    case DSOCR_TASK_LOCATE: {
        if (!ref || !*ref) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "prompt: the locate task needs a ref (the object to find)");
        static const char head[] = "<image>\nLocate <|ref|>", tail[] = "<|/ref|> in the image.";
        size_t n = strlen(head) + strlen(ref) + strlen(tail) + 1;
        if (!(*out = malloc(n))) return ds_fail(err, DSOCR_ERR_NOMEM, "prompt: out of memory");
        snprintf(*out, n, "%s%s%s", head, ref, tail);
        return DSOCR_OK;
    }
    }
    if (!fixed) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "prompt: unknown task %d", (int)task);
    if (!(*out = strdup(fixed))) return ds_fail(err, DSOCR_ERR_NOMEM, "prompt: out of memory");
    return DSOCR_OK;
}

/* Python's str.isspace() characters, which str.strip() removes. */
static int py_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Bounds of s[0..n) without leading/trailing Python whitespace. s is valid UTF-8. */
static void py_strip(const char *s, size_t n, size_t *b, size_t *e) {
    const uint8_t *u = (const uint8_t *)s;
    size_t i = 0, need;
    while (i < n) {
        size_t l = ds_utf8_seq(u + i, n - i, &need);
        if (!py_space(ds_utf8_decode(u + i, l))) break;
        i += l;
    }
    size_t j = n;
    while (j > i) {
        size_t p = j - 1;
        while (p > i && (u[p] & 0xC0) == 0x80) p--;
        size_t l = ds_utf8_seq(u + p, j - p, &need);
        if (!py_space(ds_utf8_decode(u + p, l))) break;
        j = p;
    }
    *b = i;
    *e = j;
}

dsocr_status ds_prompt_build(ds_tokenizer *tok, const char *prompt, const int *image_tokens, size_t n_images,
                             ds_prompt *out, dsocr_error *err) {
    memset(out, 0, sizeof *out);
    if (!tok || !prompt || (n_images && !image_tokens))
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "prompt: NULL argument");
    size_t n = strlen(prompt);
    size_t bad = ds_utf8_validate((const uint8_t *)prompt, n);
    if (bad < n) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "prompt: invalid UTF-8 at byte %zu", bad);
    int32_t bos = ds_tokenizer_bos_id(tok);
    int32_t image_id = ds_tokenizer_token_to_id(tok, IMAGE_MARK, sizeof IMAGE_MARK - 1);
    if (bos < 0) return ds_fail(err, DSOCR_ERR_FORMAT, "prompt: the tokenizer has no bos_token (tokenizer_config.json)");
    if (n_images && image_id < 0) return ds_fail(err, DSOCR_ERR_FORMAT, "prompt: the tokenizer has no \"<image>\" token");

    size_t b, e;
    py_strip(prompt, n, &b, &e);
    const char *text = prompt + b;
    size_t len = e - b;

    /* count the markers first: their number must match the images */
    size_t markers = 0;
    for (const char *p = text; (p = memmem(p, (size_t)(text + len - p), IMAGE_MARK, sizeof IMAGE_MARK - 1));
         p += sizeof IMAGE_MARK - 1)
        markers++;
    if (markers != n_images)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "prompt: %zu \"<image>\" markers for %zu images", markers, n_images);
    for (size_t i = 0; i < n_images; i++)
        if (image_tokens[i] <= 0)
            return ds_fail(err, DSOCR_ERR_INVALID_ARG, "prompt: image %zu has %d image tokens", i, image_tokens[i]);

    /* where each placeholder run starts */
    size_t *run_start = calloc(n_images ? n_images : 1, sizeof *run_start);
    if (!run_start) return ds_fail(err, DSOCR_ERR_NOMEM, "prompt: out of memory");
    dsocr_status st = ds_ids_push(&out->ids, bos, err);
    const char *seg = text;
    for (size_t k = 0; st == DSOCR_OK && k <= n_images; k++) {
        const char *mark = k < n_images ? memmem(seg, (size_t)(text + len - seg), IMAGE_MARK, sizeof IMAGE_MARK - 1) : text + len;
        st = ds_tokenizer_encode(tok, seg, (size_t)(mark - seg), &out->ids, err);
        if (st != DSOCR_OK || k == n_images) break;
        run_start[k] = out->ids.n;
        for (int i = 0; st == DSOCR_OK && i < image_tokens[k]; i++) st = ds_ids_push(&out->ids, image_id, err);
        out->n_image_tokens += (size_t)image_tokens[k];
        seg = mark + sizeof IMAGE_MARK - 1;
    }
    if (st == DSOCR_OK) {
        out->image_mask = calloc(out->ids.n, 1);
        if (!out->image_mask) st = ds_fail(err, DSOCR_ERR_NOMEM, "prompt: out of memory");
        for (size_t k = 0; st == DSOCR_OK && k < n_images; k++)
            memset(out->image_mask + run_start[k], 1, (size_t)image_tokens[k]);
    }
    free(run_start);
    if (st) {
        ds_prompt_free(out);
        return st;
    }
    return DSOCR_OK;
}

void ds_prompt_free(ds_prompt *p) {
    ds_ids_free(&p->ids);
    free(p->image_mask);
    memset(p, 0, sizeof *p);
}
