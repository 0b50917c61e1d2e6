#include "harness/json_util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/sha2.h>

#include "harness/strbuf.h"
#include "kernels/error.h"

/* Matrix and config files are small; a bigger file is almost certainly the
 * wrong file (a dataset, a checkpoint) and gets a clear error instead. */
#define TB_JSON_MAX_FILE (16u << 20)

int tb_json_load_file(const char *path, cJSON **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return tb_fail(errno == ENOENT ? TB_ERR_MISSING : TB_ERR_IO, "%s: cannot open: %s", path,
                       strerror(errno));
    tb_strbuf sb;
    tb_sb_init(&sb);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        tb_sb_putn(&sb, chunk, n);
        if (sb.len > TB_JSON_MAX_FILE)
            break;
    }
    bool read_error = ferror(f);
    fclose(f);
    if (read_error) {
        tb_sb_free(&sb);
        return tb_fail(TB_ERR_IO, "%s: read error", path);
    }
    if (sb.oom) {
        tb_sb_free(&sb);
        return tb_fail(TB_ERR_NOMEM, "%s: out of memory reading the file", path);
    }
    if (sb.len > TB_JSON_MAX_FILE) {
        tb_sb_free(&sb);
        return tb_fail(TB_ERR_INVALID, "%s: larger than %u MiB; not a JSON config or matrix", path,
                       TB_JSON_MAX_FILE >> 20);
    }
    int rc = tb_json_parse_text(tb_sb_str(&sb), sb.len, path, out);
    tb_sb_free(&sb);
    return rc;
}

void tb_json_line_col(const char *text, size_t offset, int *line, int *col)
{
    int l = 1, c = 1;
    for (size_t i = 0; i < offset && text[i]; i++) {
        if (text[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *col = c;
}

/* cJSON reports "ran out of input" as an error at the last byte. Parsing
 * again with whitespace appended tells the two apart: a real error stays
 * put, a truncated text now fails inside the padding. */
static bool at_end_of_input(const char *text, size_t len)
{
    char *padded = malloc(len + 4);
    if (!padded)
        return false;
    memcpy(padded, text, len);
    memcpy(padded + len, "   ", 4);
    const char *end = NULL;
    cJSON *again = cJSON_ParseWithLengthOpts(padded, len + 3, &end, false);
    size_t pos = again || !end ? 0 : (size_t)(end - padded);
    cJSON_Delete(again);
    free(padded);
    return pos >= len;
}

int tb_json_parse_text(const char *text, size_t len, const char *origin, cJSON **out)
{
    *out = NULL;
    if (memchr(text, '\0', len))
        return tb_fail(TB_ERR_INVALID, "%s: not a JSON text (contains a NUL byte)", origin);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!root) {
        size_t off = end && end >= text && end <= text + len ? (size_t)(end - text) : len;
        /* cJSON sometimes points just past the offending token (a '}' after a
         * trailing comma): step back over whitespace to the token itself */
        if (off + 1 >= len && at_end_of_input(text, len))
            off = len;
        while (off > 0 && off < len && (text[off] == ' ' || text[off] == '\t' || text[off] == '\r' ||
                                        text[off] == '\n'))
            off--;
        int line, col;
        tb_json_line_col(text, off, &line, &col);
        if (off >= len)
            return tb_fail(TB_ERR_INVALID, "%s:%d:%d: invalid JSON: unexpected end of file", origin, line, col);
        char near[24];
        size_t k = 0;
        for (size_t i = off; i < len && k < sizeof near - 1 && text[i] != '\n'; i++)
            near[k++] = text[i];
        near[k] = '\0';
        return tb_fail(TB_ERR_INVALID, "%s:%d:%d: invalid JSON near '%s'", origin, line, col, near);
    }
    /* cJSON stops after the first value; anything but whitespace after it is an error. */
    size_t off = (size_t)(end - text);
    while (off < len && (text[off] == ' ' || text[off] == '\t' || text[off] == '\n' || text[off] == '\r'))
        off++;
    if (off < len) {
        int line, col;
        tb_json_line_col(text, off, &line, &col);
        cJSON_Delete(root);
        return tb_fail(TB_ERR_INVALID, "%s:%d:%d: invalid JSON: unexpected text after the end of the value",
                       origin, line, col);
    }
    *out = root;
    return TB_OK;
}

void tb_json_format_number(double v, char *buf, size_t size)
{
    if (!isfinite(v)) {
        snprintf(buf, size, "null");
        return;
    }
    if (v == 0) {
        snprintf(buf, size, "0"); /* also folds -0 into 0 for stable hashes */
        return;
    }
    /* Integers up to 2^53 are exact in a double: print without exponent. */
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(buf, size, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

void tb_json_format_float(float v, char *buf, size_t size)
{
    if (!isfinite(v)) {
        snprintf(buf, size, "null");
        return;
    }
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, size, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) {
            /* reformat through the double path so "1e+01" style never appears for integers */
            tb_json_format_number(strtod(buf, NULL), buf, size);
            return;
        }
    }
}

static void put_string(tb_strbuf *sb, const char *s)
{
    tb_sb_putc(sb, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': tb_sb_puts(sb, "\\\""); break;
        case '\\': tb_sb_puts(sb, "\\\\"); break;
        case '\n': tb_sb_puts(sb, "\\n"); break;
        case '\r': tb_sb_puts(sb, "\\r"); break;
        case '\t': tb_sb_puts(sb, "\\t"); break;
        case '\b': tb_sb_puts(sb, "\\b"); break;
        case '\f': tb_sb_puts(sb, "\\f"); break;
        default:
            if (*p < 0x20)
                tb_sb_printf(sb, "\\u%04x", *p);
            else
                tb_sb_putc(sb, (char)*p);
        }
    }
    tb_sb_putc(sb, '"');
}

static int cmp_items(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return strcmp(x->string ? x->string : "", y->string ? y->string : "");
}

static void put_canonical(tb_strbuf *sb, const cJSON *item)
{
    char num[40];
    if (cJSON_IsObject(item)) {
        size_t n = 0;
        for (const cJSON *c = item->child; c; c = c->next)
            n++;
        const cJSON **kids = n ? malloc(n * sizeof *kids) : NULL;
        if (n && !kids) {
            sb->oom = true;
            return;
        }
        n = 0;
        for (const cJSON *c = item->child; c; c = c->next)
            kids[n++] = c;
        qsort(kids, n, sizeof *kids, cmp_items);
        tb_sb_putc(sb, '{');
        for (size_t i = 0; i < n; i++) {
            if (i)
                tb_sb_putc(sb, ',');
            put_string(sb, kids[i]->string ? kids[i]->string : "");
            tb_sb_putc(sb, ':');
            put_canonical(sb, kids[i]);
        }
        tb_sb_putc(sb, '}');
        free(kids);
    } else if (cJSON_IsArray(item)) {
        tb_sb_putc(sb, '[');
        for (const cJSON *c = item->child; c; c = c->next) {
            if (c != item->child)
                tb_sb_putc(sb, ',');
            put_canonical(sb, c);
        }
        tb_sb_putc(sb, ']');
    } else if (cJSON_IsString(item)) {
        put_string(sb, item->valuestring);
    } else if (cJSON_IsNumber(item)) {
        tb_json_format_number(item->valuedouble, num, sizeof num);
        tb_sb_puts(sb, num);
    } else if (cJSON_IsTrue(item)) {
        tb_sb_puts(sb, "true");
    } else if (cJSON_IsFalse(item)) {
        tb_sb_puts(sb, "false");
    } else {
        tb_sb_puts(sb, "null");
    }
}

char *tb_json_canonical(const cJSON *item)
{
    tb_strbuf sb;
    tb_sb_init(&sb);
    put_canonical(&sb, item);
    return tb_sb_take(&sb);
}

void tb_json_preview(const cJSON *item, char *buf, size_t size)
{
    char *s = tb_json_canonical(item);
    if (!s) {
        snprintf(buf, size, "(value)");
        return;
    }
    if (size > 4 && strlen(s) >= size)
        snprintf(buf, size, "%.*s...", (int)(size - 4), s);
    else
        snprintf(buf, size, "%s", s);
    free(s);
}

const char *tb_json_type_name(const cJSON *item)
{
    if (!item || cJSON_IsNull(item))
        return "null";
    if (cJSON_IsBool(item))
        return "a boolean";
    if (cJSON_IsNumber(item))
        return "a number";
    if (cJSON_IsString(item))
        return "a string";
    if (cJSON_IsArray(item))
        return "an array";
    if (cJSON_IsObject(item))
        return "an object";
    return "an invalid value";
}

const char *tb_json_duplicate_key(const cJSON *obj)
{
    for (const cJSON *a = obj ? obj->child : NULL; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (a->string && b->string && !strcmp(a->string, b->string))
                return a->string;
    return NULL;
}

void tb_sha256_hex(const void *data, size_t len, char out[65])
{
    struct sha256_ctx ctx;
    uint8_t digest[SHA256_DIGEST_SIZE];
    sha256_init(&ctx);
    sha256_update(&ctx, len, data);
    sha256_digest(&ctx, sizeof digest, digest);
    for (size_t i = 0; i < sizeof digest; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
    out[64] = '\0';
}

size_t tb_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t *row = malloc((lb + 1) * sizeof *row);
    if (!row)
        return la > lb ? la : lb;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    size_t d = row[lb];
    free(row);
    return d;
}

const char *tb_nearest_name(const char *name, const char *const *cands, size_t n)
{
    size_t limit = strlen(name) / 3;
    if (limit < 2)
        limit = 2;
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        size_t d = tb_edit_distance(name, cands[i]);
        if (d < best_d) {
            best_d = d;
            best = cands[i];
        }
    }
    return best_d <= limit ? best : NULL;
}
