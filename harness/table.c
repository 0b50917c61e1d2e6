#include "harness/table.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernels/error.h"

int tb_format_parse(const char *s, tb_format *out)
{
    if (!strcasecmp(s, "md") || !strcasecmp(s, "markdown"))
        *out = TB_FORMAT_MD;
    else if (!strcasecmp(s, "csv"))
        *out = TB_FORMAT_CSV;
    else if (!strcasecmp(s, "json"))
        *out = TB_FORMAT_JSON;
    else
        return tb_fail(TB_ERR_USAGE, "--format: '%s' is not one of md, csv, json", s);
    return TB_OK;
}

void tb_table_init(tb_table *t) { memset(t, 0, sizeof *t); }

void tb_table_add_column(tb_table *t, const char *header, bool right)
{
    char **h = realloc(t->headers, (size_t)(t->n_cols + 1) * sizeof *h);
    bool *r = realloc(t->right, (size_t)(t->n_cols + 1) * sizeof *r);
    if (h)
        t->headers = h;
    if (r)
        t->right = r;
    char *copy = strdup(header);
    if (!h || !r || !copy) {
        free(copy);
        t->oom = true;
        return;
    }
    t->headers[t->n_cols] = copy;
    t->right[t->n_cols] = right;
    t->n_cols++;
}

void tb_table_add_row(tb_table *t, const char *const *cells)
{
    if (t->oom)
        return;
    if (t->n_rows == t->cap) {
        int cap = t->cap ? 2 * t->cap : 16;
        char ***rows = realloc(t->rows, (size_t)cap * sizeof *rows);
        if (!rows) {
            t->oom = true;
            return;
        }
        t->rows = rows;
        t->cap = cap;
    }
    char **row = calloc((size_t)(t->n_cols > 0 ? t->n_cols : 1), sizeof *row);
    if (!row) {
        t->oom = true;
        return;
    }
    for (int c = 0; c < t->n_cols; c++) {
        row[c] = strdup(cells[c] ? cells[c] : "");
        if (!row[c])
            t->oom = true;
    }
    t->rows[t->n_rows++] = row;
}

void tb_table_free(tb_table *t)
{
    for (int r = 0; r < t->n_rows; r++) {
        for (int c = 0; c < t->n_cols; c++)
            free(t->rows[r][c]);
        free(t->rows[r]);
    }
    for (int c = 0; c < t->n_cols; c++)
        free(t->headers[c]);
    free(t->rows);
    free(t->headers);
    free(t->right);
    tb_table_init(t);
}

int tb_text_width(const char *s)
{
    int w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        w += (*p & 0xC0) != 0x80; /* count lead bytes, not continuation bytes */
    return w;
}

/* A cell as markdown: '|' escaped, line breaks as spaces. */
static int md_width(const char *s)
{
    int w = tb_text_width(s);
    for (const char *p = s; *p; p++)
        w += *p == '|';
    return w;
}

static void put_md(FILE *out, const char *s, int width, bool right)
{
    int pad = width - md_width(s);
    if (right)
        for (int i = 0; i < pad; i++)
            fputc(' ', out);
    for (const char *p = s; *p; p++) {
        if (*p == '|')
            fputs("\\|", out);
        else if (*p == '\n' || *p == '\r')
            fputc(' ', out);
        else
            fputc(*p, out);
    }
    if (!right)
        for (int i = 0; i < pad; i++)
            fputc(' ', out);
}

int tb_table_print_md(const tb_table *t, FILE *out)
{
    if (t->oom)
        return tb_fail(TB_ERR_NOMEM, "out of memory building a table");
    int *w = calloc((size_t)(t->n_cols > 0 ? t->n_cols : 1), sizeof *w);
    if (!w)
        return tb_fail(TB_ERR_NOMEM, "out of memory printing a table");
    for (int c = 0; c < t->n_cols; c++) {
        w[c] = md_width(t->headers[c]);
        if (w[c] < 3)
            w[c] = 3;
        for (int r = 0; r < t->n_rows; r++)
            if (md_width(t->rows[r][c]) > w[c])
                w[c] = md_width(t->rows[r][c]);
    }
    fputc('|', out);
    for (int c = 0; c < t->n_cols; c++) {
        fputc(' ', out);
        put_md(out, t->headers[c], w[c], false);
        fputs(" |", out);
    }
    fputs("\n|", out);
    for (int c = 0; c < t->n_cols; c++) {
        fputc(' ', out);
        for (int i = 0; i < w[c] - 1; i++)
            fputc('-', out);
        fputs(t->right[c] ? ":" : "-", out);
        fputs(" |", out);
    }
    fputc('\n', out);
    for (int r = 0; r < t->n_rows; r++) {
        fputc('|', out);
        for (int c = 0; c < t->n_cols; c++) {
            fputc(' ', out);
            put_md(out, t->rows[r][c], w[c], t->right[c]);
            fputs(" |", out);
        }
        fputc('\n', out);
    }
    free(w);
    return TB_OK;
}

static void put_csv(FILE *out, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            fputc('"', out);
        fputc(*p, out);
    }
    fputc('"', out);
}

int tb_table_print_csv(const tb_table *t, bool header, FILE *out)
{
    if (t->oom)
        return tb_fail(TB_ERR_NOMEM, "out of memory building a table");
    for (int c = 0; header && c < t->n_cols; c++) {
        if (c)
            fputc(',', out);
        put_csv(out, t->headers[c]);
    }
    if (header)
        fputc('\n', out);
    for (int r = 0; r < t->n_rows; r++) {
        for (int c = 0; c < t->n_cols; c++) {
            if (c)
                fputc(',', out);
            put_csv(out, t->rows[r][c]);
        }
        fputc('\n', out);
    }
    return TB_OK;
}
