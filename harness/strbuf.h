/* A growable string for building JSON, labels and tables. An allocation
 * failure is remembered (sb->oom) instead of reported at every append, so
 * callers build the whole text and check once at the end. */
#ifndef TB_STRBUF_H
#define TB_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tb_strbuf {
    char *data;   /* always NUL-terminated once anything was appended */
    size_t len;
    size_t cap;
    bool oom;
} tb_strbuf;

void tb_sb_init(tb_strbuf *sb);
void tb_sb_free(tb_strbuf *sb);
void tb_sb_clear(tb_strbuf *sb);
void tb_sb_putc(tb_strbuf *sb, char c);
void tb_sb_puts(tb_strbuf *sb, const char *s);
void tb_sb_putn(tb_strbuf *sb, const char *s, size_t n);
void tb_sb_printf(tb_strbuf *sb, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The text so far ("" when empty); valid until the next append. */
const char *tb_sb_str(const tb_strbuf *sb);
/* Hands the malloc'd text to the caller (NULL after an allocation failure)
 * and resets the buffer. */
char *tb_sb_take(tb_strbuf *sb);

#ifdef __cplusplus
}
#endif
#endif
