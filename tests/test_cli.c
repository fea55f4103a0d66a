/* The dsocr command as a user runs it: PDFs end to end (page count in the JSON),
 * batch folders, --resume, --format json, and bad input giving one clear error
 * line and a non-zero exit with no partial output. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>

#include "test_util.h"

static char out_buf[1 << 16], err_buf[1 << 16];

/* Runs `dsocr ARGS` through the shell; captures stdout and stderr; returns the exit code. */
static int run(const char *args) {
    const char *dir = tu_tmpdir("cli-run");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s/dsocr %s >%s/out.txt 2>%s/err.txt", DSOCR_BINARY_DIR, args, dir, dir);
    int st = system(cmd);
    char path[4200];
    size_t n;
    snprintf(path, sizeof path, "%s/out.txt", dir);
    char *o = tu_read_file(path, &n);
    snprintf(out_buf, sizeof out_buf, "%s", o ? o : "");
    free(o);
    snprintf(path, sizeof path, "%s/err.txt", dir);
    char *e = tu_read_file(path, &n);
    snprintf(err_buf, sizeof err_buf, "%s", e ? e : "");
    free(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* tu_tmpdir reuses one buffer: keep copies of the folders a test holds on to. */
static char tmp_paths[16][4096];
static int n_tmp;
static const char *tmp(const char *tag) {
    char *p = tmp_paths[n_tmp++ & 15];
    snprintf(p, sizeof tmp_paths[0], "%s", tu_tmpdir(tag));
    return p;
}

static int exists(const char *dir, const char *name) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0;
}

static cJSON *read_json(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/result.json", dir);
    char *text = tu_read_file(path, NULL);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    return j;
}

int main(void) {
    char model[4096], args[16384];
    snprintf(model, sizeof model, "%s", tu_golden("tiny-model"));
    const char *pdf = tu_source("tests/data/pdf/two_pages.pdf");

    /* A PDF end to end: every page rendered, every file written, pages counted. */
    const char *out = tmp("cli-pdf");
    snprintf(args, sizeof args, "-t 1 -m %s --mode tiny --max-tokens 12 -o %s %s", model, out, pdf);
    CHECK_EQ_INT(run(args), 0);
    CHECK(exists(out, "result.mmd") && exists(out, "result_ori.mmd") && exists(out, "result.json"));
    CHECK(exists(out, "result_with_boxes_0.png") && exists(out, "result_with_boxes_1.png"));
    cJSON *j = read_json(out);
    CHECK(j != NULL);
    cJSON *pages = cJSON_GetObjectItem(j, "pages");
    CHECK_EQ_INT(cJSON_GetArraySize(pages), 2);  /* the PDF has two pages */
    for (int i = 0; i < cJSON_GetArraySize(pages); i++) {
        cJSON *pg = cJSON_GetArrayItem(pages, i);
        cJSON *fr = cJSON_GetObjectItem(pg, "finish_reason");
        CHECK(cJSON_IsString(fr) && !strcmp(fr->valuestring, "length"));
        CHECK_EQ_INT(cJSON_GetObjectItem(pg, "n_tokens")->valueint, 12);
        CHECK_EQ_INT(cJSON_GetObjectItem(pg, "width")->valueint, 1224);  /* 612 pt at 144 dpi */
    }
    cJSON_Delete(j);
    char *mmd = NULL;
    {
        char path[4200];
        snprintf(path, sizeof path, "%s/result.mmd", out);
        mmd = tu_read_file(path, NULL);
    }
    int splits = 0;
    for (const char *s = mmd; s && (s = strstr(s, "<--- Page Split --->")); s++) splits++;
    CHECK_EQ_INT(splits, 2);
    free(mmd);

    /* --pages picks pages; a page past the end is a clear error. */
    out = tmp("cli-pages");
    snprintf(args, sizeof args, "-t 1 -m %s --mode tiny --max-tokens 4 --pages 2 -o %s %s", model, out, pdf);
    CHECK_EQ_INT(run(args), 0);
    j = read_json(out);
    CHECK(j && cJSON_GetArraySize(cJSON_GetObjectItem(j, "pages")) == 1);
    cJSON_Delete(j);
    snprintf(args, sizeof args, "-t 1 -m %s --mode tiny --max-tokens 4 --pages 3 %s", model, pdf);
    CHECK(run(args) != 0);
    CHECK_MSG(strstr(err_buf, "3") != NULL, "stderr: %s", err_buf);

    /* A folder of inputs: one output folder per input; --resume skips finished ones. */
    const char *in = tmp("cli-batch-in");
    char cmd[12000];
    snprintf(cmd, sizeof cmd, "cp %s %s/a.png && mkdir -p %s/sub && cp %s %s/sub/b.png", tu_golden("images/small_text_300x200.png"),
             in, in, tu_golden("images/rgba_pattern_640x640.png"), in);
    CHECK_EQ_INT(system(cmd), 0);
    out = tmp("cli-batch-out");
    snprintf(args, sizeof args, "-t 1 -m %s --mode tiny --max-tokens 4 -o %s %s", model, out, in);
    CHECK_EQ_INT(run(args), 0);
    char sub[8400];
    snprintf(sub, sizeof sub, "%s/a-001", out);
    CHECK(exists(sub, "result.json"));
    snprintf(sub, sizeof sub, "%s/b-002", out);
    CHECK(exists(sub, "result.json"));
    CHECK_MSG(strstr(err_buf, "2 inputs: 2 done") != NULL, "summary: %s", err_buf);
    snprintf(args, sizeof args, "-t 1 -m %s --mode tiny --max-tokens 4 --resume -o %s %s", model, out, in);
    CHECK_EQ_INT(run(args), 0);
    CHECK_MSG(strstr(err_buf, "2 skipped") != NULL, "resume summary: %s", err_buf);

    /* --format json prints the document to stdout. */
    snprintf(args, sizeof args, "-t 1 -m %s --mode tiny --max-tokens 4 --format json %s", model,
             tu_golden("images/small_text_300x200.png"));
    CHECK_EQ_INT(run(args), 0);
    j = cJSON_Parse(out_buf);
    CHECK(j && cJSON_GetArraySize(cJSON_GetObjectItem(j, "pages")) == 1);
    cJSON_Delete(j);

    /* Bad input: one line on stderr naming the problem, non-zero exit. */
    snprintf(args, sizeof args, "-m %s /nonexistent/page.png", model);
    CHECK(run(args) != 0);
    CHECK_MSG(strstr(err_buf, "/nonexistent/page.png") && strchr(err_buf, '\n') == strrchr(err_buf, '\n'),
              "stderr: %s", err_buf);
    CHECK(run("--mode huge x.png") == 2);
    CHECK(strstr(err_buf, "--mode") != NULL);
    snprintf(args, sizeof args, "-m %s/does-not-exist %s", model, tu_golden("images/small_text_300x200.png"));
    CHECK(run(args) != 0);
    CHECK(strstr(err_buf, "does-not-exist") != NULL);
    snprintf(args, sizeof args, "-m %s --task locate %s", model, tu_golden("images/small_text_300x200.png"));
    CHECK(run(args) == 2);
    CHECK(strstr(err_buf, "--ref") != NULL);
    /* A corrupt image in a batch: that input fails, the others still run. */
    const char *bad = tmp("cli-bad");
    snprintf(cmd, sizeof cmd, "head -c 300 %s > %s/cut.png", tu_golden("images/small_text_300x200.png"), bad);
    CHECK_EQ_INT(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/cut.png %s", bad, tu_golden("images/small_text_300x200.png"));
    out = tmp("cli-bad-out");
    snprintf(args, sizeof args, "-t 1 -m %s --mode tiny --max-tokens 4 -o %s %s", model, out, cmd);
    CHECK_EQ_INT(run(args), 1);
    CHECK_MSG(strstr(err_buf, "cut.png") && strstr(err_buf, "1 failed"), "stderr: %s", err_buf);
    snprintf(sub, sizeof sub, "%s/cut-001", out);
    CHECK(!exists(sub, "result.json"));   /* no partial output for the failed input */
    snprintf(sub, sizeof sub, "%s/small_text_300x200-002", out);
    CHECK(exists(sub, "result.json"));

    /* --help teaches: every task and mode named with an example. */
    CHECK_EQ_INT(run("ocr --help"), 0);
    const char *words[] = {"markdown", "free", "figure", "describe", "locate", "tiny", "small", "base", "large", "gundam",
                           "--max-crops", "--ngram-window", "--temperature", "-o, --output", "HF_TOKEN", "DSOCR_CPU"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) CHECK_MSG(strstr(out_buf, words[i]), "%s", words[i]);
    return tu_done("test_cli");
}
