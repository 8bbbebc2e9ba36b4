// util.h — shared harness helpers: the exit-status contract, checked allocation, time, host, git rev.
// Depends on libc only.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

// One line "recallbench: <msg>" on stderr, then exit 2 (bad usage / invalid input).
_Noreturn void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// One line "recallbench: <msg>" on stderr, then exit 1 (runtime failure: I/O, divergence, ...).
_Noreturn void die_runtime(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// malloc/calloc that exit 1 with file:line on failure.
#define xmalloc(n) xmalloc_at((n), __FILE__, __LINE__)
#define xcalloc(n, s) xcalloc_at((n), (s), __FILE__, __LINE__)
void *xmalloc_at(size_t n, const char *file, int line);
void *xcalloc_at(size_t n, size_t s, const char *file, int line);
char *xstrdup(const char *s);
// realloc that exits 1 with file:line on failure (never returns NULL).
#define xrealloc(p, n) xrealloc_at((p), (n), __FILE__, __LINE__)
void *xrealloc_at(void *p, size_t n, const char *file, int line);

double now_seconds(void);          // monotonic clock
const char *host_name(void);       // gethostname, cached
const char *git_revision(void);    // the build's git revision (rev.c, from vcs_tag at build time)
// ISO-8601 UTC timestamp into buf.
void utc_timestamp(char *buf, size_t n);
// Writes s as a JSON string literal (quotes and escapes) to f.
void json_string(FILE *f, const char *s);

// An output file written safely: the text goes to a temporary file next to the real target (a symlink's
// target, so the link stays a link) and replaces it by rename only once complete; a target that is not a
// regular file (a device such as /dev/full, a FIFO) is written in place and never replaced. On failure
// nothing new is left behind. out_open: 0, or -1 with one line in err ("" path: a usage error, *usage = 1).
typedef struct { FILE *f; char path[4096], tmp[4160]; int direct; } OutFile;
int out_open(OutFile *o, const char *path, int *usage, char *err, size_t errn);
// Closes and publishes the file. 0, or -1 with err (the temporary is removed).
int out_commit(OutFile *o, char *err, size_t errn);
