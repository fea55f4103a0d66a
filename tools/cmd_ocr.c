/* dsocr ocr: the command users run. Streams the model's output to stdout as it is
 * generated; with -o DIR also writes Markdown, raw output, JSON, box overlays and
 * figure crops per input. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "dsocr.h"

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
    "Output:\n"
    "  -v, --verbose       timings, tokens/s and memory on stderr\n"
    "\n"
    "Errors are one line on stderr and a non-zero exit status.\n";

static int parse_mode(const char *s, dsocr_mode *m) {
    static const char *names[] = {"tiny", "small", "base", "large", "gundam"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) { *m = (dsocr_mode)i; return 0; }
    return cli_error("--mode: '%s' is not one of tiny, small, base, large, gundam", s), -1;
}

static int parse_task(const char *s, dsocr_task *t) {
    static const char *names[] = {"markdown", "ocr", "free", "figure", "describe", "locate"};
    for (int i = 0; i < 6; i++)
        if (!strcmp(s, names[i])) { *t = (dsocr_task)i; return 0; }
    return cli_error("--task: '%s' is not one of markdown, ocr, free, figure, describe, locate", s), -1;
}

static int print_token(void *user, int id, const char *text) {
    (void)user; (void)id;
    fputs(text, stdout);
    fflush(stdout);
    return 0;
}

int dsocr_cmd_ocr(int argc, char **argv) {
    enum { O_MODE = 256, O_MAX_CROPS, O_TASK, O_PROMPT, O_REF, O_MAX_TOKENS, O_TEMP, O_TOP_P, O_TOP_K,
           O_SEED, O_NGRAM, O_NGRAM_WINDOW, O_NO_LOOP };
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'}, {"threads", required_argument, 0, 't'},
        {"mode", required_argument, 0, O_MODE}, {"max-crops", required_argument, 0, O_MAX_CROPS},
        {"task", required_argument, 0, O_TASK}, {"prompt", required_argument, 0, O_PROMPT},
        {"ref", required_argument, 0, O_REF}, {"max-tokens", required_argument, 0, O_MAX_TOKENS},
        {"temperature", required_argument, 0, O_TEMP}, {"top-p", required_argument, 0, O_TOP_P},
        {"top-k", required_argument, 0, O_TOP_K}, {"seed", required_argument, 0, O_SEED},
        {"ngram", required_argument, 0, O_NGRAM}, {"ngram-window", required_argument, 0, O_NGRAM_WINDOW},
        {"no-loop-detect", no_argument, 0, O_NO_LOOP}, {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *model = "deepseek-ai/DeepSeek-OCR";
    dsocr_params p = dsocr_default_params();
    dsocr_load_params lp = dsocr_load_default_params();
    int verbose = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:t:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 't': if (cli_parse_int("--threads", optarg, 0, 1024, &lp.n_threads)) return 2; break;
        case O_MODE: if (parse_mode(optarg, &p.mode)) return 2; break;
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
        case 'v': verbose = 1; break;
        case 'h': fputs(ocr_help, stdout); return 0;
        case ':': return cli_error("%s needs a value (see dsocr ocr --help)", argv[optind - 1]), 2;
        default: return cli_error("unknown option '%s' (see dsocr ocr --help)", argv[optind - 1]), 2;
        }
    }
    if (optind >= argc) return cli_error("no input file (see dsocr ocr --help)"), 2;
    if (p.task == DSOCR_TASK_LOCATE && !p.ref && !p.prompt)
        return cli_error("--task locate needs --ref TEXT, the thing to find"), 2;

    dsocr_error err;
    dsocr_model *m = NULL;
    if (dsocr_model_load(model, &lp, &m, &err)) return cli_fail(&err);
    int failed = 0;
    for (int i = optind; i < argc; i++) {
        dsocr_image *img = NULL;
        if (dsocr_image_load_file(argv[i], 0, &img, &err)) { cli_fail(&err); failed++; continue; }
        dsocr_result r;
        if (dsocr_ocr(m, img, &p, print_token, NULL, &r, &err)) {
            cli_fail(&err);
            failed++;
        } else {
            fputc('\n', stdout);
            if (verbose)
                fprintf(stderr, "dsocr: %s: %dx%d, grid %dx%d, %d prompt tokens (%d image), %d generated; "
                        "vision %.0f ms, prefill %.0f ms, decode %.0f ms (%.2f tokens/s); finish %s\n",
                        argv[i], dsocr_image_width(img), dsocr_image_height(img), r.grid_w, r.grid_h,
                        r.n_prompt_tokens, r.n_image_tokens, r.n_tokens, r.ms_vision, r.ms_prefill,
                        r.ms_decode, r.ms_decode > 0 ? r.n_tokens * 1000.0 / r.ms_decode : 0.0,
                        r.finish == DSOCR_FINISH_STOP ? "stop" : r.finish == DSOCR_FINISH_LENGTH ? "length" : "loop");
            dsocr_result_free(&r);
        }
        dsocr_image_free(img);
    }
    dsocr_model_free(m);
    return failed ? 1 : 0;
}
