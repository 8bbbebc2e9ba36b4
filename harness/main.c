// main.c — recallbench's command line: subcommand dispatch, `help [CMD]`, `--version`.
// Depends on every harness/*.h. Exit status: 0 ok, 2 bad usage/input, 1 runtime failure.
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "rb_build.h"
#include "train.h"
#include "util.h"

int cmd_kernel(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_frontier(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_regress(int argc, char **argv);
int cmd_export(int argc, char **argv);

typedef struct {
    const char *name, *summary;
    int (*fn)(int, char **);
} Command;

static const Command commands[] = {
    {"gen", "print task examples (text or JSONL)", cmd_gen},
    {"train", "train one model, record it in the results database", cmd_train},
    {"sweep", "run a grid of configs from an INI spec (-j workers, resumable)", cmd_sweep},
    {"frontier", "accuracy vs state: best lr per size, Pareto frontier, efficiency ratios", cmd_frontier},
    {"plot", "gnuplot figures (PNG + SVG) of frontiers and training curves", cmd_plot},
    {"report", "markdown summary of a results database", cmd_report},
    {"merge", "fold several results databases into one", cmd_merge},
    {"export", "one CSV row per run (config, state, accuracies, TVD, baselines); analyses read it back", cmd_export},
    {"bench", "training tokens/s and GEMM share for one configuration", cmd_bench},
    {"kernel", "print and plot BLA impulse responses (the Dirichlet blur)", cmd_kernel},
    {"regress", "accuracy regression suite against a baseline file (for CI)", cmd_regress},
};
#define NCMD ((int)(sizeof commands / sizeof commands[0]))

static int (*command_fn(const Command *c))(int, char **) { return c->fn; }

static void usage(FILE *f) {
    fprintf(f, "recallbench %s (%s) — trains small sequence models on synthetic recall tasks and maps\n"
               "accuracy against recurrent state size.\n\nusage: recallbench COMMAND [options]\n\ncommands:\n",
            RB_VERSION, git_revision());
    for (int i = 0; i < NCMD; i++)
        if (command_fn(&commands[i])) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-10s %s\n\nrecallbench help COMMAND shows a command's options.\n", "help", "this text, or a command's");
}

static const Command *find(const char *name) {
    for (int i = 0; i < NCMD; i++)
        if (!strcmp(commands[i].name, name) && command_fn(&commands[i])) return &commands[i];
    return NULL;
}

// Every command's output goes through stdio: a failed write (disk full, closed stdout) must not exit 0.
static int finish(int rc) {
    errno = 0;
    int bad = fflush(stdout) != 0 || ferror(stdout);
    if (bad) {
        fprintf(stderr, "recallbench: cannot write to standard output: %s\n", errno ? strerror(errno) : "write error");
        return rc == EXIT_OK ? EXIT_RUNTIME : rc;
    }
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) die_usage("no command given (recallbench help lists them)");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("recallbench %s (git %s)\n", RB_VERSION, git_revision());
        return finish(0);
    }
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) { usage(stdout); return finish(0); }
    if (!strcmp(cmd, "help")) {
        if (argc < 3) { usage(stdout); return finish(0); }
        const Command *c = find(argv[2]);
        if (!c) die_usage("help: unknown command '%s' (see recallbench help)", argv[2]);
        char *hv[] = {argv[2], "--help", NULL};
        return finish(command_fn(c)(2, hv));
    }
    const Command *c = find(cmd);
    if (!c) die_usage("unknown command '%s' (see recallbench help)", cmd);
    return finish(command_fn(c)(argc - 1, argv + 1));
}
