/* dsocr: DeepSeek-OCR inference in C.
 *
 *   dsocr_model *m; dsocr_error err;
 *   dsocr_load_params lp = dsocr_load_default_params();
 *   if (dsocr_model_load("path/to/DeepSeek-OCR", &lp, &m, &err)) { puts(err.message); ... }
 *   dsocr_image *img; dsocr_image_load_file("page.png", 0, &img, &err);
 *   dsocr_params p = dsocr_default_params();          // gundam, markdown task, greedy
 *   dsocr_result r; dsocr_ocr(m, img, &p, on_token, user, &r, &err);
 *   ... r.text ...; dsocr_result_free(&r); dsocr_image_free(img); dsocr_model_free(m);
 *
 * Every call that can fail returns a dsocr_status and, when given a dsocr_error,
 * fills it with a one-line message naming the file, tensor, byte offset or pixel size
 * at fault. The library never prints and keeps no global state: two models, or two
 * requests on two models, can live in one process.
 */
#ifndef DSOCR_H
#define DSOCR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DSOCR_VERSION "0.1.0"

typedef enum dsocr_status {
    DSOCR_OK = 0,
    DSOCR_ERR_INVALID_ARG,  /* the caller passed something wrong */
    DSOCR_ERR_IO,           /* a file is missing, unreadable or unwritable */
    DSOCR_ERR_FORMAT,       /* malformed input: checkpoint, config, json, image, pdf */
    DSOCR_ERR_UNSUPPORTED,  /* well-formed but not something dsocr handles */
    DSOCR_ERR_NOMEM,        /* an allocation failed */
    DSOCR_ERR_LIMIT,        /* over a limit: pixels, context length, memory */
    DSOCR_ERR_CANCELLED,    /* stopped by the caller (callback returned non-zero) */
    DSOCR_ERR_INTERNAL      /* a bug in dsocr */
} dsocr_status;

typedef struct dsocr_error {
    dsocr_status code;
    char message[1024];
} dsocr_error;

const char *dsocr_status_name(dsocr_status s);

/* ---- model -------------------------------------------------------------- */

typedef struct dsocr_model dsocr_model;

/* Progress of long work (model download): `what` names the file; total 0 = unknown.
 * Return non-zero to cancel. */
typedef int (*dsocr_progress_callback)(void *user, const char *what, uint64_t done, uint64_t total);

/* Weight quantization of the language model, done once at load (docs/QUANTIZATION.md):
 * every decoder Linear (attention, MLPs, experts, lm_head) in 32-element blocks with an
 * f16 scale; vision, embeddings, router and norms stay at checkpoint precision. */
typedef enum dsocr_quant {
    DSOCR_QUANT_NONE = 0,   /* checkpoint weights (bf16) as they are */
    DSOCR_QUANT_Q8,         /* int8 blocks: ~1.9x less decode traffic, logits within ~1% */
    DSOCR_QUANT_Q4          /* 4-bit blocks: ~3.5x less traffic, visibly noisier logits */
} dsocr_quant;

typedef struct dsocr_load_params {
    int n_threads;                     /* 0 = number of physical cores */
    int offline;                       /* 1 = never download (also HF_HUB_OFFLINE=1) */
    const char *revision;              /* hub revision for repo ids; NULL = "main" */
    dsocr_progress_callback progress;  /* download progress; may be NULL */
    void *progress_user;
    int quant;                         /* dsocr_quant; 0 = none */
    uint64_t max_memory;               /* memory guard: loading and dsocr_ocr refuse with
                                          DSOCR_ERR_LIMIT when their estimate (weights + KV
                                          cache + activations) is over this many bytes.
                                          0 = MemAvailable of /proc/meminfo; UINT64_MAX = off */
} dsocr_load_params;

dsocr_load_params dsocr_load_default_params(void);

/* Loads a Hugging Face checkpoint: a local directory (config.json, *.safetensors,
 * tokenizer.json) or a hub repo id such as "deepseek-ai/DeepSeek-OCR", resolved in
 * the Hugging Face cache and downloaded when missing. Weights are memory-mapped;
 * nothing is computed until the whole model is known to be complete and well-formed. */
dsocr_status dsocr_model_load(const char *model_dir, const dsocr_load_params *params,
                              dsocr_model **out, dsocr_error *err);
void dsocr_model_free(dsocr_model *model);
/* The compute backend and the kernels this CPU got, e.g. "cpu (avx512-vnni,
 * 2 threads)" or "cpu (avx2, 8 threads)"; valid while the model is. DSOCR_CPU=avx2 or
 * generic in the environment caps the kernels below what the CPU supports. */
const char *dsocr_model_backend(const dsocr_model *model);

/* ---- images ------------------------------------------------------------- */

typedef struct dsocr_image dsocr_image;   /* 8-bit RGB, EXIF orientation applied */

/* max_pixels: 0 = default limit (Pillow's decompression-bomb limit, 178,956,970). */
dsocr_status dsocr_image_load_file(const char *path, uint64_t max_pixels,
                                   dsocr_image **out, dsocr_error *err);
dsocr_status dsocr_image_load_memory(const void *data, size_t size, const char *name,
                                     uint64_t max_pixels, dsocr_image **out, dsocr_error *err);
/* Wraps a copy of packed RGB pixels (width*height*3 bytes). */
dsocr_status dsocr_image_from_rgb(const uint8_t *rgb, int width, int height,
                                  dsocr_image **out, dsocr_error *err);
int dsocr_image_width(const dsocr_image *img);
int dsocr_image_height(const dsocr_image *img);
const uint8_t *dsocr_image_pixels(const dsocr_image *img);
void dsocr_image_free(dsocr_image *img);

/* ---- OCR ---------------------------------------------------------------- */

typedef enum dsocr_mode {
    DSOCR_MODE_TINY,    /* 512 view, 73 image tokens */
    DSOCR_MODE_SMALL,   /* 640 view, 111 */
    DSOCR_MODE_BASE,    /* 1024 padded view, 273 */
    DSOCR_MODE_LARGE,   /* 1280 padded view, 421 */
    DSOCR_MODE_GUNDAM   /* 1024 global view + 640 tiles (default) */
} dsocr_mode;

typedef enum dsocr_task {
    DSOCR_TASK_MARKDOWN,  /* <image>\n<|grounding|>Convert the document to markdown. */
    DSOCR_TASK_OCR,       /* <image>\n<|grounding|>OCR this image. */
    DSOCR_TASK_FREE,      /* <image>\nFree OCR. */
    DSOCR_TASK_FIGURE,    /* <image>\nParse the figure. */
    DSOCR_TASK_DESCRIBE,  /* <image>\nDescribe this image in detail. */
    DSOCR_TASK_LOCATE     /* <image>\nLocate <|ref|>REF<|/ref|> in the image. */
} dsocr_task;

typedef enum dsocr_finish {
    DSOCR_FINISH_STOP,    /* the model emitted EOS */
    DSOCR_FINISH_LENGTH,  /* max_new_tokens reached */
    DSOCR_FINISH_LOOP     /* runaway repetition detected and cut */
} dsocr_finish;

typedef struct dsocr_params {
    dsocr_mode mode;
    int max_crops;           /* gundam tile limit: 9 as upstream HF (vLLM uses 6) */
    dsocr_task task;
    const char *prompt;      /* raw prompt with "<image>"; overrides task when set */
    const char *ref;         /* the object to find for DSOCR_TASK_LOCATE */
    int max_new_tokens;      /* 8192 */
    float temperature;       /* 0 = greedy (default) */
    float top_p;             /* 1 = off */
    int top_k;               /* 0 = off */
    uint64_t seed;
    int ngram_size;          /* no-repeat n-gram size, 20; 0 = off */
    int ngram_window;        /* 0 = HF ban over the whole sequence; >0 = vLLM windowed ban */
    int loop_detect;         /* 1 = stop runaway repetition with DSOCR_FINISH_LOOP */
} dsocr_params;

dsocr_params dsocr_default_params(void);

/* Called for every generated token with the text it completes (may be "" while a
 * UTF-8 sequence is incomplete); EOS is not passed. A last call with token_id -1
 * carries text held back at the end (an incomplete UTF-8 tail). Return non-zero to
 * stop generation (dsocr_ocr then fails with DSOCR_ERR_CANCELLED). */
typedef int (*dsocr_token_callback)(void *user, int token_id, const char *text);

typedef struct dsocr_result {
    char *text;              /* decoded output, special tokens kept, EOS removed; with
                                finish == LOOP, cut where the repetition began */
    int *token_ids;          /* generated ids */
    int n_tokens;
    int n_prompt_tokens;
    int n_image_tokens;
    int grid_w, grid_h;      /* tile grid; 1x1 = no tiles */
    dsocr_finish finish;
    char finish_detail[192]; /* why a loop was cut, e.g. "same line repeated 10 times" */
    double ms_vision, ms_prefill, ms_decode;
} dsocr_result;

/* OCR of one image. A model runs one request at a time (it owns the run buffers and the
 * KV cache): calls on the same model must not overlap; separate models may run in
 * parallel. */
dsocr_status dsocr_ocr(dsocr_model *model, const dsocr_image *image, const dsocr_params *params,
                       dsocr_token_callback on_token, void *user,
                       dsocr_result *out, dsocr_error *err);
void dsocr_result_free(dsocr_result *result);

#ifdef __cplusplus
}
#endif
#endif /* DSOCR_H */
