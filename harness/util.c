// util.c — exit-status contract, checked allocation, clocks, host and revision. Depends on libc.
#include "util.h"
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
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

int out_open(OutFile *o, const char *path, int *usage, char *err, size_t errn) {
    memset(o, 0, sizeof *o);
    if (usage) *usage = 0;
    if (!*path) {
        if (usage) *usage = 1;
        snprintf(err, errn, "--out '': give a file name");
        return -1;
    }
    if (strlen(path) >= sizeof o->path - 1) { snprintf(err, errn, "cannot write %s: path too long", path); return -1; }
    snprintf(o->path, sizeof o->path, "%s", path);
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        char real[PATH_MAX];
        if (!realpath(path, real)) {  // a dangling link: write where it points
            ssize_t n = readlink(path, real, sizeof real - 1);
            if (n <= 0) { snprintf(err, errn, "cannot write %s: %s", path, strerror(errno)); return -1; }
            real[n] = 0;
            if (real[0] != '/') {
                const char *sl = strrchr(path, '/');
                int w = sl ? snprintf(o->path, sizeof o->path, "%.*s/%s", (int)(sl - path), path, real)
                           : snprintf(o->path, sizeof o->path, "%s", real);
                if (w < 0 || (size_t)w >= sizeof o->path) {
                    snprintf(err, errn, "cannot write %s: the path its link points to is too long", path);
                    return -1;
                }
            } else snprintf(o->path, sizeof o->path, "%s", real);
        } else snprintf(o->path, sizeof o->path, "%s", real);
    }
    if (stat(o->path, &st) == 0 && !S_ISREG(st.st_mode)) {
        if (S_ISDIR(st.st_mode)) { snprintf(err, errn, "cannot write %s: is a directory", path); return -1; }
        o->direct = 1;
        o->f = fopen(o->path, "w");
        if (!o->f) { snprintf(err, errn, "cannot write %s: %s", path, strerror(errno)); return -1; }
        return 0;
    }
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp%ld", o->path, (long)getpid());
    o->f = fopen(o->tmp, "w");
    if (!o->f) { snprintf(err, errn, "cannot write %s: %s", o->tmp, strerror(errno)); return -1; }
    return 0;
}

int out_commit(OutFile *o, char *err, size_t errn) {
    errno = 0;
    int bad = ferror(o->f);
    if (fclose(o->f) != 0) bad = 1;
    o->f = NULL;
    if (bad) {
        snprintf(err, errn, "cannot write %s: %s", o->path, errno ? strerror(errno) : "write error");
        if (!o->direct) unlink(o->tmp);
        return -1;
    }
    if (!o->direct && rename(o->tmp, o->path) != 0) {
        snprintf(err, errn, "cannot write %s: %s", o->path, strerror(errno));
        unlink(o->tmp);
        return -1;
    }
    return 0;
}
