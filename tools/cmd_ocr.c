/* dsocr ocr: the command users run. Takes images, PDFs, folders and path lists;
 * streams the model's output to stdout as it is generated; with -o DIR writes
 * Markdown, raw output, JSON, box overlays and figure crops per input. Shows
 * progress on a terminal and a summary at the end; Ctrl-C stops after cleaning up. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app/memory.h"
#include "cli.h"
#include "commands.h"
#include "dsocr.h"
#include "image/pdf.h"
#include "ocr/markdown.h"
#include "ocr/output.h"
#include "text/utf8.h"

static const char *ocr_help =
    "Usage: dsocr [ocr] [-m MODEL] [options] INPUT...\n"
    "\n"
    "Reads images (PNG, JPEG, WebP, BMP, TIFF, GIF) and prints what DeepSeek-OCR reads in\n"
    "them. By default a page becomes Markdown with layout boxes, streamed as it is generated.\n"
    "\n"
    "Model:\n"
    "  -m, --model DIR|ORG/NAME  checkpoint folder (config.json, *.safetensors, tokenizer.json)\n"
    "                            or a Hugging Face repo id (default deepseek-ai/DeepSeek-OCR)\n"
    "  -t, --threads N           compute threads (default: one per physical core)\n"
    "  --quant q8|q4             quantize the language model's weights at load for faster decode;\n"
    "                            q8 moves logits ~1% (rare greedy flips), q4 ~16x more (docs/QUANTIZATION.md)\n"
    "\n"
    "What to ask (--task), each with an example:\n"
    "  markdown   document to Markdown with layout boxes (default)\n"
    "               dsocr page.png > page.md\n"
    "  ocr        any image, text with boxes          dsocr --task ocr photo.jpg\n"
    "  free       plain text, no layout               dsocr --task free scan.png\n"
    "  figure     parse a chart or figure             dsocr --task figure chart.png\n"
    "  describe   caption the image in detail         dsocr --task describe photo.jpg\n"
    "  locate     find something (needs --ref)        dsocr --task locate --ref 'the title' page.png\n"
    "  --prompt TEXT   a raw prompt instead of a task; must contain <image>\n"
    "                  dsocr --prompt '<image>\\nFree OCR.' scan.png\n"
    "  --ref TEXT      what to find for --task locate\n"
    "\n"
    "Resolution (--mode): more vision tokens read smaller print but cost time.\n"
    "  tiny     512x512, 73 tokens         dsocr --mode tiny receipt.jpg\n"
    "  small    640x640, 111 tokens        dsocr --mode small slide.png\n"
    "  base     1024 padded, 273 tokens    dsocr --mode base page.png\n"
    "  large    1280 padded, 421 tokens    dsocr --mode large dense-page.png\n"
    "  gundam   1024 view + 640 tiles (default): best for full pages\n"
    "  --max-crops N   most tiles in gundam mode (default 9 as upstream HF; vLLM uses 6)\n"
    "\n"
    "Generation:\n"
    "  --max-tokens N      stop after N new tokens (default 8192)\n"
    "  --temperature T     0 = greedy (default); >0 samples\n"
    "  --top-p P, --top-k K, --seed S   sampling controls (with --temperature)\n"
    "  --ngram N           no-repeat n-gram size (default 20, 0 = off)\n"
    "  --ngram-window W    ban only n-grams within the last W generated tokens\n"
    "                      (vLLM style, <td> </td> never banned; default 0 = whole sequence)\n"
    "  --no-loop-detect    do not cut runaway repetition\n"
    "\n"
    "Inputs: image files, PDFs (every page, or --pages), folders (searched recursively\n"
    "for images and PDFs), and - to read a list of paths from standard input.\n"
    "  --pages LIST        PDF pages to read, e.g. 1-3,7 (1-based; default all)\n"
    "  --dpi N             PDF rendering resolution (default 144, as upstream)\n"
    "\n"
    "Output:\n"
    "  -o, --output DIR    write result.mmd (Markdown, figures as image links),\n"
    "                      result_ori.mmd (raw model output), result.json (boxes in\n"
    "                      pixels, finish reason, tokens, timings), result_with_boxes.png\n"
    "                      and images/*.jpg (figure crops). With several inputs, one\n"
    "                      folder per input inside DIR.\n"
    "                        dsocr -o out/ report.pdf scans/\n"
    "  --format F          what goes to stdout: raw (the model's output as it streams;\n"
    "                      the default without -o), md (Markdown with image links),\n"
    "                      text (no boxes or tags), json, or none (default with -o)\n"
    "  --resume            skip inputs whose output folder is already complete\n"
    "  --max-memory SIZE   refuse (instead of running out of memory) when the model, the\n"
    "                      KV cache for --max-tokens and the activations of --mode are\n"
    "                      estimated to need more than SIZE (e.g. 12G, 800M; default:\n"
    "                      the available memory; off = no check)\n"
    "  --offline           never download; use the Hugging Face cache only\n"
    "  -v, --verbose       timings, tokens/s, memory and the CPU kernels in use on stderr\n"
    "  -q, --quiet         no progress or summary on stderr\n"
    "\n"
    "A progress line (pages, tokens/s, ETA) is drawn on stderr when it is a terminal,\n"
    "plain log lines otherwise, and a summary at the end. The exit status is non-zero\n"
    "if any input or page failed. Errors are one line on stderr; a failed input leaves\n"
    "no files in its output folder. Ctrl-C stops at the next token: the current input's\n"
    "partial outputs are removed, finished inputs are kept, the summary says which (exit\n"
    "status 130); a second Ctrl-C quits at once.\n"
    "Environment: HF_TOKEN (gated or private repos), HF_HOME / HF_HUB_CACHE (the cache),\n"
    "DSOCR_CPU=avx2|generic (use simpler CPU kernels than this CPU supports; other values\n"
    "are ignored; dsocr -v names the kernels in use).\n";

static int parse_task(const char *s, dsocr_task *t) {
    static const char *names[] = {"markdown", "ocr", "free", "figure", "describe", "locate"};
    for (int i = 0; i < 6; i++)
        if (!strcmp(s, names[i])) { *t = (dsocr_task)i; return 0; }
    return cli_error("--task: '%s' is not one of markdown, ocr, free, figure, describe, locate", s), -1;
}

/* ---- inputs --------------------------------------------------------------------- */

typedef struct job {
    char *path;
    int is_pdf;
} job;

typedef struct job_list {
    job *items;
    int n, cap;
} job_list;

static int has_ext(const char *path, const char *const *exts) {
    const char *dot = strrchr(path, '.');
    if (!dot || strchr(dot, '/')) return 0;
    for (int i = 0; exts[i]; i++)
        if (!strcasecmp(dot + 1, exts[i])) return 1;
    return 0;
}

static const char *const image_exts[] = {"png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff", NULL};
static const char *const pdf_exts[] = {"pdf", NULL};

static int is_pdf_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return has_ext(path, pdf_exts);
    char magic[5] = {0};
    size_t n = fread(magic, 1, 5, f);
    fclose(f);
    return n == 5 && !memcmp(magic, "%PDF-", 5);
}

static int add_job(job_list *l, const char *path) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        job *p = realloc(l->items, (size_t)cap * sizeof *p);
        if (!p) return -1;
        l->items = p;
        l->cap = cap;
    }
    char *copy = strdup(path);
    if (!copy) return -1;
    l->items[l->n++] = (job){copy, is_pdf_file(path)};
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Folders are searched recursively for images and PDFs, in sorted order. */
static int add_dir(job_list *l, const char *dir, int depth) {
    if (depth > 32) return cli_error("%s: folders nested too deeply", dir), -1;
    DIR *d = opendir(dir);
    if (!d) return cli_error("%s: cannot read folder: %s", dir, strerror(errno)), -1;
    char **names = NULL;
    int n = 0, cap = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **p = realloc(names, (size_t)cap * sizeof *p);
            if (!p) { rc = -1; break; }
            names = p;
        }
        if (!(names[n] = strdup(e->d_name))) { rc = -1; break; }
        n++;
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n && !rc; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) rc = add_dir(l, path, depth + 1);
        else if (has_ext(path, image_exts) || has_ext(path, pdf_exts)) rc = add_job(l, path);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    if (rc && errno == ENOMEM) cli_error("out of memory listing %s", dir);
    return rc;
}

static int add_input(job_list *l, const char *arg) {
    if (!strcmp(arg, "-")) {  /* a list of paths on stdin, one per line */
        char line[4096];
        while (fgets(line, sizeof line, stdin)) {
            line[strcspn(line, "\r\n")] = 0;
            if (line[0] && add_input(l, line)) return -1;
        }
        return 0;
    }
    struct stat st;
    if (stat(arg, &st) != 0) return cli_error("%s: %s", arg, strerror(errno)), -1;
    if (S_ISDIR(st.st_mode)) return add_dir(l, arg, 0);
    return add_job(l, arg) ? (cli_error("out of memory"), -1) : 0;
}

/* ---- progress and interruption -------------------------------------------------- */

static volatile sig_atomic_t interrupted;   /* the signal number */
static void on_signal(int sig) { interrupted = sig; }

typedef struct run_state {
    int tty, quiet, verbose;
    const char *format;       /* raw, md, text, json, none */
    int pages_done, pages_total;
    long tokens_page, tokens_total;
    double t_start, t_page, t_last_draw, decode_ms_total;
    const char *input;
    int page_index, page_count;
} run_state;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void draw_progress(run_state *st, int force) {
    if (!st->tty || st->quiet) return;
    double t = now_ms();
    if (!force && t - st->t_last_draw < 200) return;
    st->t_last_draw = t;
    double page_s = (t - st->t_page) / 1e3;
    double rate = page_s > 0 ? st->tokens_page / page_s : 0;
    char eta[32] = "?";
    if (st->pages_done > 0) {
        double per_page = (t - st->t_start) / 1e3 / (st->pages_done + (page_s > 0 ? 0.5 : 0));
        int left = (int)(per_page * (st->pages_total - st->pages_done));
        snprintf(eta, sizeof eta, "%dm%02ds", left / 60, left % 60);
    }
    fprintf(stderr, "\r\033[K[%d/%d pages] %s%s%.0d: %ld tokens, %.1f tokens/s, ETA %s", st->pages_done,
            st->pages_total, st->input, st->page_count > 1 ? " p" : "", st->page_count > 1 ? st->page_index + 1 : 0,
            st->tokens_page, rate, eta);
    fflush(stderr);
}

static int on_token(void *user, int id, const char *text) {
    run_state *st = user;
    if (id >= 0) { st->tokens_page++; st->tokens_total++; }
    if (!strcmp(st->format, "raw")) {
        fputs(text, stdout);
        if (st->tty) fflush(stdout);  /* a terminal shows text as it comes */
    }
    draw_progress(st, 0);
    return interrupted ? 1 : 0;
}

static int on_download(void *user, const char *file, uint64_t done, uint64_t total) {
    run_state *st = user;
    if (st->quiet) return interrupted;
    if (st->tty)
        fprintf(stderr, "\r\033[Kdownloading %s: %.1f / %.1f MB", file, done / 1e6, total / 1e6);
    else if (done == total)
        fprintf(stderr, "dsocr: downloaded %s (%.1f MB)\n", file, total / 1e6);
    return interrupted;
}

/* Resident memory in MB from /proc/self/status: current (VmRSS) and peak (VmHWM).
 * Mapped weights count once they are touched. */
static void memory_mb(double *rss, double *peak) {
    *rss = *peak = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return;
    char line[256];
    long kb;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) *rss = kb / 1024.0;
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) *peak = kb / 1024.0;
    }
    fclose(f);
}

/* ---- one input ------------------------------------------------------------------ */

typedef struct totals {
    int inputs_ok, inputs_failed, inputs_skipped, pages, finish[3];
} totals;

static const char *finish_name(dsocr_finish f) {
    return f == DSOCR_FINISH_STOP ? "stop" : f == DSOCR_FINISH_LENGTH ? "length" : "loop";
}

/* OCR of one page image; writes to the output and stdout as the format says. */
static int run_page(dsocr_model *m, const dsocr_params *p, run_state *st, ds_output *out, const dsocr_image *img,
                    int page, int is_pdf, totals *tot) {
    dsocr_error err;
    dsocr_result r;
    st->tokens_page = 0;
    st->t_page = now_ms();
    if (dsocr_ocr(m, img, p, on_token, st, &r, &err)) {
        if (st->tty && !st->quiet) fputs("\r\033[K", stderr);
        if (err.code == DSOCR_ERR_CANCELLED && interrupted) return -2;
        cli_error("%s%s%.0d: %s", st->input, is_pdf ? " page " : "", is_pdf ? page + 1 : 0, err.message);
        return -1;
    }
    tot->pages++;
    tot->finish[r.finish]++;
    st->decode_ms_total += r.ms_decode;
    int rc = 0;
    if (out) {
        ds_page_output po = {.index = page, .rgb = dsocr_image_pixels(img), .width = dsocr_image_width(img),
                             .height = dsocr_image_height(img), .text = r.text, .text_len = strlen(r.text),
                             .finish = r.finish, .finish_detail = r.finish_detail, .mode = p->mode,
                             .grid_w = r.grid_w, .grid_h = r.grid_h, .n_prompt_tokens = r.n_prompt_tokens,
                             .n_image_tokens = r.n_image_tokens, .n_tokens = r.n_tokens,
                             .ms_vision = r.ms_vision, .ms_prefill = r.ms_prefill, .ms_decode = r.ms_decode};
        if (ds_output_add_page(out, &po, &err)) rc = (cli_fail(&err), -1);
    }
    if (!strcmp(st->format, "raw")) {
        fputs(is_pdf ? DS_PAGE_SPLIT : "\n", stdout);
    } else if (!strcmp(st->format, "md") || !strcmp(st->format, "text")) {
        char *txt = NULL;
        size_t len = 0;
        dsocr_status s = !strcmp(st->format, "md")
                             ? ds_markdown_rewrite(r.text, strlen(r.text), is_pdf ? page : -1, &txt, &len, &err)
                             : ds_markdown_plain(r.text, strlen(r.text), &txt, &len, &err);
        if (s) rc = (cli_fail(&err), -1);
        else {
            size_t b, n;
            ds_markdown_strip(txt, len, &b, &n);
            fwrite(txt + b, 1, n, stdout);
            fputs(is_pdf ? DS_PAGE_SPLIT : "\n", stdout);
        }
        free(txt);
    }
    fflush(stdout);
    st->pages_done++;
    if (!st->quiet) {
        if (st->tty) fputs("\r\033[K", stderr);
        if (!st->tty || st->verbose)
            fprintf(stderr, "dsocr: %s%s%.0d: %d tokens (%s%s%s), %.1f s, %.1f tokens/s\n", st->input,
                    is_pdf ? " page " : "", is_pdf ? page + 1 : 0, r.n_tokens, finish_name(r.finish),
                    r.finish_detail[0] ? ": " : "", r.finish_detail, (now_ms() - st->t_page) / 1e3,
                    r.ms_decode > 0 ? r.n_tokens * 1e3 / r.ms_decode : 0.0);
        if (st->verbose) {
            double rss, peak;
            memory_mb(&rss, &peak);
            fprintf(stderr, "dsocr:   %dx%d, grid %dx%d, %d prompt tokens (%d image); vision %.0f ms, "
                    "prefill %.0f ms (%.1f tokens/s), decode %.0f ms; resident %.0f MB (peak %.0f MB)\n",
                    dsocr_image_width(img), dsocr_image_height(img), r.grid_w, r.grid_h, r.n_prompt_tokens,
                    r.n_image_tokens, r.ms_vision, r.ms_prefill,
                    r.ms_prefill > 0 ? r.n_prompt_tokens * 1e3 / r.ms_prefill : 0.0, r.ms_decode, rss, peak);
        }
    }
    dsocr_result_free(&r);
    return rc;
}

static void output_dir_for(const char *base, const char *input, int n_jobs, int job_index, char *out, size_t n) {
    if (n_jobs == 1) { snprintf(out, n, "%s", base); return; }
    const char *name = strrchr(input, '/');
    name = name ? name + 1 : input;
    char stem[256];
    ds_output_sanitize(name, stem, sizeof stem);
    char *dot = strrchr(stem, '.');
    if (dot && dot != stem) *dot = 0;
    /* inputs of the same name in different folders get the job number as well */
    snprintf(out, n, "%s/%s-%03d", base, stem, job_index + 1);
}

static int file_exists(const char *dir, const char *name) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- no partial outputs ------------------------------------------------------------ */

/* The files of an output folder (and its images/ folder) before an input runs, by
 * name and inode: what the input adds or replaces (every write is a rename, so a
 * new inode) can be removed when it fails, without touching anything else. */
typedef struct file_id {
    char name[272];   /* "x" or "images/x" */
    ino_t ino;
} file_id;

typedef struct dir_snapshot {
    int dir_existed, images_existed;
    file_id *files;
    int n, cap;
} dir_snapshot;

static void snapshot_folder(dir_snapshot *s, const char *dir, const char *sub) {
    char path[4200];
    snprintf(path, sizeof path, "%s%s%s", dir, sub ? "/" : "", sub ? sub : "");
    DIR *d = opendir(path);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (s->n == s->cap) {
            int cap = s->cap ? s->cap * 2 : 32;
            file_id *p = realloc(s->files, (size_t)cap * sizeof *p);
            if (!p) break;   /* without a full list nothing old is removed: see is_new */
            s->files = p;
            s->cap = cap;
        }
        file_id *f = &s->files[s->n++];
        snprintf(f->name, sizeof f->name, "%s%s%s", sub ? sub : "", sub ? "/" : "", e->d_name);
        f->ino = e->d_ino;
    }
    closedir(d);
}

static void snapshot_take(dir_snapshot *s, const char *dir) {
    memset(s, 0, sizeof *s);
    struct stat st;
    char path[4200];
    s->dir_existed = stat(dir, &st) == 0;
    snprintf(path, sizeof path, "%s/images", dir);
    s->images_existed = stat(path, &st) == 0;
    snapshot_folder(s, dir, NULL);
    snapshot_folder(s, dir, "images");
}

static int snapshot_has(const dir_snapshot *s, const char *name, ino_t ino) {
    for (int i = 0; i < s->n; i++)
        if (s->files[i].ino == ino && !strcmp(s->files[i].name, name)) return 1;
    return 0;
}

/* Removes the regular files that appeared (or were replaced) since the snapshot, then
 * the folders the input created if they are empty. Returns the files removed. */
static int remove_new_files(const dir_snapshot *s, const char *dir, const char *sub) {
    char path[4200];
    snprintf(path, sizeof path, "%s%s%s", dir, sub ? "/" : "", sub ? sub : "");
    DIR *d = opendir(path);
    if (!d) return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char name[272], full[4500];
        snprintf(name, sizeof name, "%s%s%s", sub ? sub : "", sub ? "/" : "", e->d_name);
        snprintf(full, sizeof full, "%s/%s", dir, name);
        struct stat st;
        if (lstat(full, &st) != 0 || !S_ISREG(st.st_mode) || snapshot_has(s, name, st.st_ino)) continue;
        if (unlink(full) == 0) removed++;
        else cli_error("could not remove the partial output %s: %s", full, strerror(errno));
    }
    closedir(d);
    return removed;
}

static void snapshot_restore(dir_snapshot *s, const char *dir) {
    remove_new_files(s, dir, "images");
    remove_new_files(s, dir, NULL);
    char path[4200];
    snprintf(path, sizeof path, "%s/images", dir);
    if (!s->images_existed) rmdir(path);   /* fails, harmlessly, when not empty */
    if (!s->dir_existed) rmdir(dir);
}

static void snapshot_free(dir_snapshot *s) {
    free(s->files);
    memset(s, 0, sizeof *s);
}

/* Returns 0 ok, -1 failed, -2 interrupted. */
static int run_input(dsocr_model *m, const dsocr_params *p, run_state *st, const job *jb, const char *out_dir,
                     const char *pages_spec, float dpi, totals *tot) {
    dsocr_error err;
    ds_output *out = NULL;
    char tmp_dir[64] = "";
    const char *dir = out_dir;
    if (!dir && !strcmp(st->format, "json")) {  /* JSON to stdout goes through a scratch folder */
        snprintf(tmp_dir, sizeof tmp_dir, "/tmp/dsocr-json-XXXXXX");
        if (!mkdtemp(tmp_dir)) return cli_error("cannot create a scratch folder: %s", strerror(errno)), -1;
        dir = tmp_dir;
    }
    const char *base = strrchr(jb->path, '/');
    base = base ? base + 1 : jb->path;
    dir_snapshot snap = {0};
    if (out_dir) snapshot_take(&snap, out_dir);
    if (dir && ds_output_open(dir, base, jb->is_pdf, NULL, &out, &err)) {
        cli_fail(&err);
        if (out_dir) snapshot_restore(&snap, out_dir);
        snapshot_free(&snap);
        return -1;
    }
    st->input = jb->path;
    int rc = 0;
    if (jb->is_pdf) {
        ds_pdf *pdf = NULL;
        int *pages = NULL, n_pages = 0;
        if (ds_pdf_open_file(jb->path, NULL, &pdf, &err) ||
            ds_pdf_parse_pages(pages_spec ? pages_spec : "", ds_pdf_page_count(pdf), &pages, &n_pages, &err)) {
            rc = (cli_fail(&err), -1);
        } else {
            st->pages_total += n_pages - 1;  /* the job was counted as one page */
            st->page_count = n_pages;
            for (int i = 0; i < n_pages && !rc; i++) {
                if (interrupted) { rc = -2; break; }
                uint8_t *rgb = NULL;
                int w, h;
                dsocr_image *img = NULL;
                st->page_index = pages[i];
                if (ds_pdf_render_page(pdf, pages[i], dpi, 0, &rgb, &w, &h, &err) ||
                    dsocr_image_from_rgb(rgb, w, h, &img, &err)) {
                    rc = (cli_error("%s page %d: %s", jb->path, pages[i] + 1, err.message), -1);
                } else {
                    rc = run_page(m, p, st, out, img, pages[i], 1, tot);
                }
                dsocr_image_free(img);
                free(rgb);
            }
        }
        free(pages);
        ds_pdf_close(pdf);
    } else {
        dsocr_image *img = NULL;
        st->page_count = 1;
        st->page_index = 0;
        if (dsocr_image_load_file(jb->path, 0, &img, &err)) rc = (cli_fail(&err), -1);
        else rc = run_page(m, p, st, out, img, 0, 0, tot);
        dsocr_image_free(img);
    }
    /* result.json is written last: its presence marks a complete output folder */
    if (out && rc == 0) {
        if (ds_output_finish(out, &err)) rc = (cli_fail(&err), -1);
        else if (!out_dir) {
            char path[128];
            snprintf(path, sizeof path, "%s/result.json", tmp_dir);
            FILE *f = fopen(path, "rb");
            int c;
            if (f) { while ((c = fgetc(f)) != EOF) putchar(c); fclose(f); }
        }
    }
    ds_output_free(out);
    /* a failed or interrupted input leaves nothing behind: no partial file, no result.json */
    if (rc != 0 && out_dir) snapshot_restore(&snap, out_dir);
    snapshot_free(&snap);
    if (tmp_dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
        if (system(cmd) != 0) cli_error("could not remove %s", tmp_dir);
    }
    return rc;
}

int dsocr_cmd_ocr(int argc, char **argv) {
    enum { O_MODE = 256, O_MAX_CROPS, O_TASK, O_PROMPT, O_REF, O_MAX_TOKENS, O_TEMP, O_TOP_P, O_TOP_K,
           O_SEED, O_NGRAM, O_NGRAM_WINDOW, O_NO_LOOP, O_FORMAT, O_PAGES, O_DPI, O_RESUME, O_OFFLINE,
           O_MAX_MEMORY, O_QUANT };
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'}, {"threads", required_argument, 0, 't'},
        {"mode", required_argument, 0, O_MODE}, {"max-crops", required_argument, 0, O_MAX_CROPS},
        {"task", required_argument, 0, O_TASK}, {"prompt", required_argument, 0, O_PROMPT},
        {"ref", required_argument, 0, O_REF}, {"max-tokens", required_argument, 0, O_MAX_TOKENS},
        {"temperature", required_argument, 0, O_TEMP}, {"top-p", required_argument, 0, O_TOP_P},
        {"top-k", required_argument, 0, O_TOP_K}, {"seed", required_argument, 0, O_SEED},
        {"ngram", required_argument, 0, O_NGRAM}, {"ngram-window", required_argument, 0, O_NGRAM_WINDOW},
        {"no-loop-detect", no_argument, 0, O_NO_LOOP}, {"output", required_argument, 0, 'o'},
        {"format", required_argument, 0, O_FORMAT}, {"pages", required_argument, 0, O_PAGES},
        {"dpi", required_argument, 0, O_DPI}, {"resume", no_argument, 0, O_RESUME},
        {"offline", no_argument, 0, O_OFFLINE}, {"max-memory", required_argument, 0, O_MAX_MEMORY},
        {"verbose", no_argument, 0, 'v'}, {"quant", required_argument, 0, O_QUANT},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *model = NULL, *out_dir = NULL, *format = NULL, *pages = NULL;
    dsocr_params p = dsocr_default_params();
    dsocr_load_params lp = dsocr_load_default_params();
    int verbose = 0, quiet = 0, resume = 0, dpi_i = 144, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:t:o:vqh", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 't': if (cli_parse_int("--threads", optarg, 0, 1024, &lp.n_threads)) return 2; break;
        case O_MODE: if (cli_parse_mode("--mode", optarg, &p.mode)) return 2; break;
        case O_MAX_CROPS: if (cli_parse_int("--max-crops", optarg, 2, 64, &p.max_crops)) return 2; break;
        case O_TASK: if (parse_task(optarg, &p.task)) return 2; break;
        case O_PROMPT: p.prompt = optarg; break;
        case O_REF: p.ref = optarg; break;
        case O_MAX_TOKENS: if (cli_parse_int("--max-tokens", optarg, 1, 1 << 20, &p.max_new_tokens)) return 2; break;
        case O_TEMP: if (cli_parse_float("--temperature", optarg, 0, 100, &p.temperature)) return 2; break;
        case O_TOP_P: if (cli_parse_float("--top-p", optarg, 0, 1, &p.top_p)) return 2; break;
        case O_TOP_K: if (cli_parse_int("--top-k", optarg, 0, 1 << 20, &p.top_k)) return 2; break;
        case O_SEED: if (cli_parse_u64("--seed", optarg, &p.seed)) return 2; break;
        case O_NGRAM: if (cli_parse_int("--ngram", optarg, 0, 1000, &p.ngram_size)) return 2; break;
        case O_NGRAM_WINDOW: if (cli_parse_int("--ngram-window", optarg, 0, 1 << 20, &p.ngram_window)) return 2; break;
        case O_NO_LOOP: p.loop_detect = 0; break;
        case 'o': out_dir = optarg; break;
        case O_FORMAT: format = optarg; break;
        case O_PAGES: pages = optarg; break;
        case O_DPI: if (cli_parse_int("--dpi", optarg, 18, 1200, &dpi_i)) return 2; break;
        case O_RESUME: resume = 1; break;
        case O_OFFLINE: lp.offline = 1; break;
        case O_QUANT:
            if (!strcmp(optarg, "q8")) lp.quant = DSOCR_QUANT_Q8;
            else if (!strcmp(optarg, "q4")) lp.quant = DSOCR_QUANT_Q4;
            else if (!strcmp(optarg, "none")) lp.quant = DSOCR_QUANT_NONE;
            else return cli_error("--quant: '%s' is not one of q8, q4, none", optarg), 2;
            break;
        case O_MAX_MEMORY:
            if (!strcmp(optarg, "off")) lp.max_memory = UINT64_MAX;
            else if (ds_mem_parse_size(optarg, &lp.max_memory))
                return cli_error("--max-memory: '%s' is not a size such as 12G, 800M or off", optarg), 2;
            break;
        case 'v': verbose = 1; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(ocr_help, stdout); return 0;
        case ':': return cli_error("%s needs a value (see dsocr ocr --help)", argv[optind - 1]), 2;
        default: return cli_error("unknown option '%s' (see dsocr ocr --help)", argv[optind - 1]), 2;
        }
    }
    if (optind >= argc) return cli_error("no input file (see dsocr ocr --help)"), 2;
    if (!format) format = out_dir ? "none" : "raw";
    if (strcmp(format, "raw") && strcmp(format, "md") && strcmp(format, "text") && strcmp(format, "json") &&
        strcmp(format, "none"))
        return cli_error("--format: '%s' is not one of raw, md, text, json, none", format), 2;
    if (p.task == DSOCR_TASK_LOCATE && !p.ref && !p.prompt)
        return cli_error("--task locate needs --ref TEXT, the thing to find"), 2;
    const char *texts[2][2] = {{"--prompt", p.prompt}, {"--ref", p.ref}};
    for (int i = 0; i < 2; i++) {
        if (!texts[i][1]) continue;
        size_t n = strlen(texts[i][1]), bad = ds_utf8_validate((const uint8_t *)texts[i][1], n);
        if (bad < n)
            return cli_error("%s: not valid UTF-8 (byte 0x%02x at offset %zu); give the text in UTF-8", texts[i][0],
                             (unsigned char)texts[i][1][bad], bad), 2;
    }
    if (p.prompt && !strstr(p.prompt, "<image>"))
        return cli_error("--prompt must contain <image> where the image goes, e.g. '<image>\\nFree OCR.'"), 2;
    if (resume && !out_dir) return cli_error("--resume needs -o DIR (it skips inputs whose output is complete)"), 2;
    if (!model) model = getenv("DSOCR_MODEL") ? getenv("DSOCR_MODEL") : "deepseek-ai/DeepSeek-OCR";

    /* Every input is found before the model is loaded: a typo fails fast. */
    job_list jobs = {0};
    int rc = 0;
    for (int i = optind; i < argc && !rc; i++) rc = add_input(&jobs, argv[i]);
    if (!rc && jobs.n == 0) rc = cli_error("no images or PDFs found in the inputs given");
    if (rc) {
        for (int i = 0; i < jobs.n; i++) free(jobs.items[i].path);
        free(jobs.items);
        return 2;
    }
    /* The output folder must be writable before the model is loaded. */
    int made_out_dir = 0;
    if (out_dir) {
        const char *why = NULL;
        char probe[4200];
        int fd = -1;
        if (mkdir(out_dir, 0777) == 0) made_out_dir = 1;
        else if (errno != EEXIST) why = "cannot create the folder";
        if (!why) {
            snprintf(probe, sizeof probe, "%s/.dsocr-probe-%ld", out_dir, (long)getpid());
            fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
            if (fd < 0) why = "cannot write in the folder";
        }
        if (why) {
            cli_error("-o %s: %s: %s", out_dir, why, strerror(errno));
            if (made_out_dir) rmdir(out_dir);
            for (int i = 0; i < jobs.n; i++) free(jobs.items[i].path);
            free(jobs.items);
            return 1;
        }
        close(fd);
        unlink(probe);
    }

    run_state st = {.tty = isatty(2), .quiet = quiet, .verbose = verbose, .format = format,
                    .pages_total = jobs.n};
    lp.progress = on_download;
    lp.progress_user = &st;
    /* Ctrl-C (or SIGTERM) sets a flag the token callback sees; SA_RESETHAND: a second
     * one ends the process at once. */
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    dsocr_error err;
    dsocr_model *m = NULL;
    double t_load = now_ms();
    if (dsocr_model_load(model, &lp, &m, &err)) {
        if (st.tty && !quiet) fputs("\r\033[K", stderr);
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        for (int i = 0; i < jobs.n; i++) free(jobs.items[i].path);
        free(jobs.items);
        if (made_out_dir) rmdir(out_dir);
        if (interrupted && err.code == DSOCR_ERR_CANCELLED) {
            cli_error("interrupted while loading the model; nothing was written");
            return 128 + interrupted;
        }
        return cli_fail(&err);
    }
    if (st.tty && !quiet) fputs("\r\033[K", stderr);
    if (verbose) fprintf(stderr, "dsocr: model %s loaded in %.2f s; backend %s\n", model, (now_ms() - t_load) / 1e3,
                         dsocr_model_backend(m));

    totals tot = {0};
    const char *stopped_in = NULL;   /* the input whose partial outputs were removed */
    st.t_start = now_ms();
    for (int i = 0; i < jobs.n && !interrupted; i++) {
        char dir[4096];
        if (out_dir) output_dir_for(out_dir, jobs.items[i].path, jobs.n, i, dir, sizeof dir);
        if (resume && file_exists(dir, "result.json")) {
            tot.inputs_skipped++;
            st.pages_done++;
            if (!quiet) fprintf(stderr, "dsocr: %s: already done in %s, skipped (--resume)\n", jobs.items[i].path, dir);
            continue;
        }
        int r = run_input(m, &p, &st, &jobs.items[i], out_dir ? dir : NULL, pages, (float)dpi_i, &tot);
        if (r == -2) { stopped_in = jobs.items[i].path; break; }
        if (r) tot.inputs_failed++;
        else tot.inputs_ok++;
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (st.tty && !quiet) fputs("\r\033[K", stderr);
    if (!quiet || interrupted) {
        double secs = (now_ms() - st.t_start) / 1e3;
        int not_started = jobs.n - tot.inputs_ok - tot.inputs_failed - tot.inputs_skipped - (stopped_in ? 1 : 0);
        char stop[4400] = "";
        if (interrupted && stopped_in)
            snprintf(stop, sizeof stop, ", interrupted in %s (its partial outputs were removed), %d not started",
                     stopped_in, not_started);
        else if (interrupted)
            snprintf(stop, sizeof stop, ", interrupted (%d not started)", not_started);
        fprintf(stderr, "dsocr: %d input%s: %d done, %d failed, %d skipped%s; %d page%s (%d stop, %d length, %d loop); "
                "%ld tokens in %.1f s (%.1f tokens/s decoding)\n",
                jobs.n, jobs.n == 1 ? "" : "s", tot.inputs_ok, tot.inputs_failed, tot.inputs_skipped, stop, tot.pages,
                tot.pages == 1 ? "" : "s", tot.finish[0], tot.finish[1], tot.finish[2], st.tokens_total, secs,
                st.decode_ms_total > 0 ? st.tokens_total * 1e3 / st.decode_ms_total : 0.0);
    }
    dsocr_model_free(m);
    for (int i = 0; i < jobs.n; i++) free(jobs.items[i].path);
    free(jobs.items);
    if (made_out_dir && tot.inputs_ok == 0) rmdir(out_dir);   /* only when empty */
    if (interrupted) return 128 + interrupted;
    return tot.inputs_failed ? 1 : 0;
}
