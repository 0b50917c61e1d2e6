#include "harness/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tb_sb_init(tb_strbuf *sb) { memset(sb, 0, sizeof *sb); }

void tb_sb_free(tb_strbuf *sb)
{
    free(sb->data);
    tb_sb_init(sb);
}

void tb_sb_clear(tb_strbuf *sb)
{
    sb->len = 0;
    if (sb->data)
        sb->data[0] = '\0';
}

static bool reserve(tb_strbuf *sb, size_t extra)
{
    if (sb->oom)
        return false;
    if (sb->len + extra + 1 <= sb->cap)
        return true;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < sb->len + extra + 1)
        cap *= 2;
    char *p = realloc(sb->data, cap);
    if (!p) {
        sb->oom = true;
        return false;
    }
    sb->data = p;
    sb->cap = cap;
    return true;
}

void tb_sb_putn(tb_strbuf *sb, const char *s, size_t n)
{
    if (!reserve(sb, n))
        return;
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void tb_sb_puts(tb_strbuf *sb, const char *s) { tb_sb_putn(sb, s, strlen(s)); }

void tb_sb_putc(tb_strbuf *sb, char c) { tb_sb_putn(sb, &c, 1); }

void tb_sb_printf(tb_strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(sb, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

const char *tb_sb_str(const tb_strbuf *sb) { return sb->data ? sb->data : ""; }

char *tb_sb_take(tb_strbuf *sb)
{
    char *s = NULL;
    if (!sb->oom) {
        s = sb->data ? sb->data : strdup("");
        sb->data = NULL;
    }
    tb_sb_free(sb);
    return s;
}
