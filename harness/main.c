// main.c — recallbench's command line: subcommand dispatch, help, --version. Depends on harness/*.
#include <stdio.h>
#include <string.h>
#include "rb_build.h"
int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--version") == 0) { printf("recallbench %s (%s)\n", RB_VERSION, RB_GIT_REV); return 0; }
    return 2;
}
