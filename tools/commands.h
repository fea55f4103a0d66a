/* Subcommands of the dsocr tool. Each takes the arguments after its name
 * (argv[0] is the subcommand name) and returns the process exit code. */
#ifndef DSOCR_COMMANDS_H
#define DSOCR_COMMANDS_H

int dsocr_cmd_tokenize(int argc, char **argv);  /* tools/cmd_tokenize.c */

#endif
