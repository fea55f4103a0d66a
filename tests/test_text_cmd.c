/* text: the `dsocr tokenize` subcommand (tools/cmd_tokenize.c): encode, decode,
 * stdin mode, and one-line errors with a non-zero exit code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tools/commands.h"
#include "test_util.h"

/* Runs the subcommand with stdout (and optionally stdin) redirected to files;
 * returns its exit code and the captured stdout (malloc'd). */
static int run_cmd(char **argv, int argc, const char *stdin_text, char **out) {
    const char *dir = tu_tmpdir("cmd");
    char out_path[1024], in_path[1024];
    snprintf(out_path, sizeof out_path, "%s/stdout", dir);
    snprintf(in_path, sizeof in_path, "%s/stdin", dir);
    fflush(stdout);
    int saved_out = dup(1), saved_in = -1;
    FILE *o = fopen(out_path, "w");
    dup2(fileno(o), 1);
    if (stdin_text) {
        tu_write_file(in_path, stdin_text, strlen(stdin_text));
        saved_in = dup(0);
        FILE *i = fopen(in_path, "r");
        dup2(fileno(i), 0);
        fclose(i);
        clearerr(stdin);
    }
    int rc = dsocr_cmd_tokenize(argc, argv);
    fflush(stdout);
    dup2(saved_out, 1);
    close(saved_out);
    fclose(o);
    if (saved_in >= 0) { dup2(saved_in, 0); close(saved_in); clearerr(stdin); }
    size_t size;
    *out = tu_read_file(out_path, &size);
    return rc;
}

int main(void) {
    char *model = strdup(tu_golden("tiny-model"));
    char *out;

    char *a1[] = {"tokenize", "-m", model, "\n<|grounding|>Convert the document to markdown.", "<td>1</td>"};
    CHECK_EQ_INT(run_cmd(a1, 5, NULL, &out), 0);
    CHECK_STR(out, "201 128820 21842 270 4940 304 2121 7919 16\n128821 19 128822\n");
    free(out);

    char *a2[] = {"tokenize", "-m", model, "--decode", "201 128820 21842 270 4940 304 2121 7919 16", "129000"};
    CHECK_EQ_INT(run_cmd(a2, 6, NULL, &out), 0);
    CHECK_STR(out, "\n<|grounding|>Convert the document to markdown.\n");
    free(out);

    char *a3[] = {"tokenize", "-m", model, "--decode", "--skip-special", "128821,19,128822"};
    CHECK_EQ_INT(run_cmd(a3, 6, NULL, &out), 0);
    CHECK_STR(out, "1\n");
    free(out);

    char *a4[] = {"tokenize", "-m", model};
    CHECK_EQ_INT(run_cmd(a4, 3, "Free OCR.\n<td>1</td>\n", &out), 0);
    CHECK_STR(out, "21431 126041 16\n128821 19 128822\n");
    free(out);

    char *a5[] = {"tokenize", "-m", model, "--decode"};
    CHECK_EQ_INT(run_cmd(a5, 4, "128821 19 128822\n[201, 21431]\n", &out), 0);
    CHECK_STR(out, "<td>1</td>\n\nFree\n");
    free(out);

    /* errors: one line on stderr, non-zero exit */
    char *e1[] = {"tokenize", "-m", "/nonexistent"};
    CHECK(run_cmd(e1, 3, NULL, &out) != 0);
    free(out);
    char *e2[] = {"tokenize", "Hello"};
    CHECK(run_cmd(e2, 2, NULL, &out) != 0);
    free(out);
    char *e3[] = {"tokenize", "-m", model, "--decode", "12 x3"};
    CHECK(run_cmd(e3, 5, NULL, &out) != 0);
    free(out);
    char *e4[] = {"tokenize", "-m", model, "bad \xff utf8"};
    CHECK(run_cmd(e4, 4, NULL, &out) != 0);
    free(out);
    char *e5[] = {"tokenize", "-m", model, "--frobnicate"};
    CHECK(run_cmd(e5, 4, NULL, &out) != 0);
    free(out);

    free(model);
    return tu_done("test_text_cmd");
}
