// util.c — exit-status contract, checked allocation, clocks, host and revision. Depends on libc.
#include "util.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "rb_build.h"

_Noreturn static void die_v(int code, const char *fmt, va_list ap) {
    fflush(stdout);
    fputs("recallbench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    exit(code);
}
void die_usage(const char *fmt, ...) { va_list ap; va_start(ap, fmt); die_v(EXIT_USAGE, fmt, ap); }
void die_runtime(const char *fmt, ...) { va_list ap; va_start(ap, fmt); die_v(EXIT_RUNTIME, fmt, ap); }

void *xmalloc_at(size_t n, const char *file, int line) {
    void *p = malloc(n ? n : 1);
    if (!p) die_runtime("out of memory allocating %zu bytes (%s:%d)", n, file, line);
    return p;
}
void *xcalloc_at(size_t n, size_t s, const char *file, int line) {
    void *p = calloc(n ? n : 1, s ? s : 1);
    if (!p) die_runtime("out of memory allocating %zu x %zu bytes (%s:%d)", n, s, file, line);
    return p;
}
void *xrealloc_at(void *p, size_t n, const char *file, int line) {
    void *q = realloc(p, n ? n : 1);
    if (!q) die_runtime("out of memory reallocating %zu bytes (%s:%d)", n, file, line);
    return q;
}
char *xstrdup(const char *s) {
    char *d = xmalloc(strlen(s) + 1);
    return strcpy(d, s);
}

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
const char *host_name(void) {
    static char h[256];
    if (!h[0] && gethostname(h, sizeof h - 1) != 0) strcpy(h, "unknown");
    return h;
}
const char *git_revision(void) { return RB_GIT_REV; }
void utc_timestamp(char *buf, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}
