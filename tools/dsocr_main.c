/* dsocr: DeepSeek-OCR from the command line. `dsocr [ocr] ...` runs OCR; the other
 * subcommands are tools around the model (info, tokenize, parity, mkmodel, bench). */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "dsocr.h"

static const char *usage_text =
    "dsocr " DSOCR_VERSION " - DeepSeek-OCR in C: images and PDFs to Markdown\n"
    "\n"
    "Usage:\n"
    "  dsocr [ocr] [-m MODEL] [options] INPUT...   OCR images or PDFs (see dsocr ocr --help)\n"
    "  dsocr info -m MODEL                         show a checkpoint's config and tensors\n"
    "  dsocr tokenize -m MODEL [--decode] TEXT...  prompt text to token ids and back\n"
    "  dsocr parity -m MODEL --fixture FILE...     compare against golden PyTorch fixtures\n"
    "  dsocr mkmodel -o DIR [--preset real|tiny]   write a random-weight checkpoint\n"
    "  dsocr bench [-m MODEL]                      measure speed against the machine's limits\n"
    "\n"
    "Example:\n"
    "  dsocr -m deepseek-ai/DeepSeek-OCR page.png > page.md\n"
    "\n"
    "Run 'dsocr COMMAND --help' for the options of a command.\n";

int main(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "--version")) {
        printf("dsocr %s\n", DSOCR_VERSION);
        return 0;
    }
    static const struct { const char *name; int (*run)(int, char **); } commands[] = {
        {"ocr", dsocr_cmd_ocr},
        {"info", dsocr_cmd_info},
        {"tokenize", dsocr_cmd_tokenize},
        {"parity", dsocr_cmd_parity},
        {"mkmodel", dsocr_cmd_mkmodel},
        {"bench", dsocr_cmd_bench},
    };
    if (argc >= 2)
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
            if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    if (argc < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    /* No subcommand name: the arguments are those of `dsocr ocr`. */
    argv[0] = "ocr";
    return dsocr_cmd_ocr(argc, argv);
}
