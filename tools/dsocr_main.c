/* dsocr: command-line front end (placeholder until the CLI lands). */
#include <stdio.h>

#include "dsocr.h"

int main(int argc, char **argv) {
    (void)argc; (void)argv;
    printf("dsocr %s\n", DSOCR_VERSION);
    return 0;
}
