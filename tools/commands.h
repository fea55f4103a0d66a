/* Subcommands of the dsocr tool. Each takes the arguments after its name
 * (argv[0] is the subcommand name) and returns the process exit code. */
#ifndef DSOCR_COMMANDS_H
#define DSOCR_COMMANDS_H

int dsocr_cmd_ocr(int argc, char **argv);       /* tools/cmd_ocr.c */
int dsocr_cmd_info(int argc, char **argv);      /* tools/cmd_info.c */
int dsocr_cmd_tokenize(int argc, char **argv);  /* tools/cmd_tokenize.c */
int dsocr_cmd_parity(int argc, char **argv);    /* tools/cmd_parity.c */
int dsocr_cmd_mkmodel(int argc, char **argv);   /* tools/cmd_mkmodel.c */
int dsocr_cmd_bench(int argc, char **argv);     /* tools/cmd_bench.c */

#endif
