#include "models/safetensors_file.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kernels/error.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors files are little-endian; this code copies tensor bytes as they are"
#endif

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
              {"I8", 1},  {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1},    {"BOOL", 1}};

size_t tb_st_dtype_size(const char *dtype)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (!strcmp(dtype, dtypes[i].name))
            return dtypes[i].size;
    return 0;
}

char *tb_st_shape_str(const int64_t *shape, int ndim, char *buf, size_t size)
{
    size_t off = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < ndim && off < size; d++)
        off += (size_t)snprintf(buf + off, size - off, "%s%" PRId64, d ? "," : "", shape[d]);
    if (off < size)
        snprintf(buf + off, size - off, "]");
    return buf;
}

static void free_tensors(tb_st_file *sf)
{
    for (int i = 0; i < sf->n; i++)
        free(sf->tensors[i].name);
    free(sf->tensors);
    sf->tensors = NULL;
    sf->n = 0;
}

void tb_st_close(tb_st_file *sf)
{
    if (sf->f)
        fclose(sf->f);
    sf->f = NULL;
    free_tensors(sf);
}

/* A JSON number that is a non-negative integer below 2^53 (exact in a double). */
static bool json_count(const cJSON *v, int64_t *out)
{
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    if (!(d >= 0.0 && d < 9007199254740992.0) || d != floor(d))
        return false;
    *out = (int64_t)d;
    return true;
}

static int parse_entry(tb_st_file *sf, const cJSON *item, tb_st_tensor *t)
{
    const char *p = sf->path, *n = item->string;
    TB_CHECK(cJSON_IsObject(item), TB_ERR_DATA, "%s: tensor '%s': header entry is not an object", p, n);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    TB_CHECK(cJSON_IsString(dt), TB_ERR_DATA, "%s: tensor '%s': no dtype string", p, n);
    TB_CHECK(tb_st_dtype_size(dt->valuestring) > 0, TB_ERR_DATA, "%s: tensor '%s': unknown dtype '%s'", p, n,
             dt->valuestring);
    snprintf(t->dtype, sizeof t->dtype, "%s", dt->valuestring);
    TB_CHECK(cJSON_IsArray(shape), TB_ERR_DATA, "%s: tensor '%s': no shape array", p, n);
    int nd = cJSON_GetArraySize(shape);
    TB_CHECK(nd <= TB_ST_MAX_DIMS, TB_ERR_DATA, "%s: tensor '%s': %d dimensions (at most %d supported)", p, n, nd,
             TB_ST_MAX_DIMS);
    t->ndim = nd;
    int64_t numel = 1;
    for (int d = 0; d < nd; d++) {
        TB_CHECK(json_count(cJSON_GetArrayItem(shape, d), &t->shape[d]), TB_ERR_DATA,
                 "%s: tensor '%s': shape entry %d is not a non-negative integer", p, n, d);
        TB_CHECK(t->shape[d] == 0 || numel <= INT64_MAX / 16 / t->shape[d], TB_ERR_DATA,
                 "%s: tensor '%s': shape is too large", p, n);
        numel *= t->shape[d];
    }
    TB_CHECK(cJSON_IsArray(offs) && cJSON_GetArraySize(offs) == 2 &&
                 json_count(cJSON_GetArrayItem(offs, 0), &t->begin) &&
                 json_count(cJSON_GetArrayItem(offs, 1), &t->end) && t->begin <= t->end,
             TB_ERR_DATA, "%s: tensor '%s': data_offsets must be [begin, end] with 0 <= begin <= end", p, n);
    int64_t need = numel * (int64_t)tb_st_dtype_size(t->dtype);
    if (t->end - t->begin != need) {
        char s[128];
        return tb_fail(TB_ERR_DATA, "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] hold %" PRId64
                       " bytes but shape %s of %s needs %" PRId64, p, n, t->begin, t->end, t->end - t->begin,
                       tb_st_shape_str(t->shape, t->ndim, s, sizeof s), t->dtype, need);
    }
    t->name = strdup(n);
    TB_CHECK(t->name != NULL, TB_ERR_NOMEM, "%s: out of memory", p);
    return TB_OK;
}

static int cmp_begin(const void *a, const void *b)
{
    const tb_st_tensor *x = *(const tb_st_tensor *const *)a, *y = *(const tb_st_tensor *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* The tensors must cover [0, data_size) without gaps or overlaps. */
static int check_tiling(tb_st_file *sf)
{
    const tb_st_tensor *last = NULL;
    for (int i = 0; i < sf->n; i++)
        if (!last || sf->tensors[i].end > last->end)
            last = &sf->tensors[i];
    if (last && last->end > sf->data_size)
        return tb_fail(TB_ERR_DATA, "%s: truncated: tensor '%s' ends at byte %" PRId64 " of the data but the file "
                       "holds only %" PRId64 " data bytes", sf->path, last->name, last->end, sf->data_size);
    const tb_st_tensor **order = malloc(sizeof *order * (sf->n > 0 ? (size_t)sf->n : 1u));
    TB_CHECK(order != NULL, TB_ERR_NOMEM, "%s: out of memory", sf->path);
    for (int i = 0; i < sf->n; i++)
        order[i] = &sf->tensors[i];
    qsort(order, (size_t)sf->n, sizeof *order, cmp_begin);
    int64_t pos = 0;
    const char *prev = NULL;
    int rc = TB_OK;
    for (int i = 0; i < sf->n && rc == TB_OK; i++) {
        if (order[i]->begin != pos && prev)
            rc = tb_fail(TB_ERR_DATA, "%s: tensors do not tile the data: '%s' starts at byte %" PRId64 " but '%s' "
                         "ends at byte %" PRId64 " (%s)", sf->path, order[i]->name, order[i]->begin, prev, pos,
                         order[i]->begin > pos ? "a gap" : "an overlap");
        else if (order[i]->begin != pos)
            rc = tb_fail(TB_ERR_DATA, "%s: tensors do not tile the data: the first tensor '%s' starts at byte %"
                         PRId64 ", not 0", sf->path, order[i]->name, order[i]->begin);
        pos = order[i]->end;
        prev = order[i]->name;
    }
    free(order);
    TB_TRY(rc);
    TB_CHECK(pos == sf->data_size, TB_ERR_DATA, "%s: %" PRId64 " bytes after the last tensor (the data is %" PRId64
             " bytes, the tensors cover %" PRId64 ")", sf->path, sf->data_size - pos, sf->data_size, pos);
    return TB_OK;
}

static int parse_header(tb_st_file *sf, const char *text, size_t len)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = (at && at >= text && at <= text + len) ? (long)(at - text) : -1;
        return tb_fail(TB_ERR_DATA, "%s: the header is not valid JSON (error near header byte %ld)", sf->path, off);
    }
    int rc = TB_OK;
    for (const char *c = end; rc == TB_OK && c < text + len; c++)
        if (*c != ' ' && *c != '\n' && *c != '\t' && *c != '\r' && *c != '\0')
            rc = tb_fail(TB_ERR_DATA, "%s: unexpected bytes after the JSON header (header byte %ld)", sf->path,
                         (long)(c - text));
    if (rc == TB_OK && !cJSON_IsObject(root))
        rc = tb_fail(TB_ERR_DATA, "%s: the header is not a JSON object", sf->path);
    int count = rc == TB_OK ? cJSON_GetArraySize(root) : 0;
    if (rc == TB_OK) {
        sf->tensors = calloc(count > 0 ? (size_t)count : 1u, sizeof *sf->tensors);
        if (!sf->tensors)
            rc = tb_fail(TB_ERR_NOMEM, "%s: out of memory", sf->path);
    }
    for (const cJSON *item = rc == TB_OK ? root->child : NULL; item && rc == TB_OK; item = item->next) {
        if (!strcmp(item->string, "__metadata__")) {
            if (!cJSON_IsObject(item))
                rc = tb_fail(TB_ERR_DATA, "%s: __metadata__ is not an object", sf->path);
            continue;
        }
        if (tb_st_find(sf, item->string))
            rc = tb_fail(TB_ERR_DATA, "%s: tensor '%s' appears twice in the header", sf->path, item->string);
        else if ((rc = parse_entry(sf, item, &sf->tensors[sf->n])) == TB_OK)
            sf->n++;
    }
    cJSON_Delete(root);
    return rc;
}

static int read_exact(tb_st_file *sf, void *dst, size_t bytes, int64_t offset, const char *what)
{
    if (fseeko(sf->f, (off_t)offset, SEEK_SET) != 0 || fread(dst, 1, bytes, sf->f) != bytes)
        return tb_fail(ferror(sf->f) ? TB_ERR_IO : TB_ERR_DATA, "%s: cannot read %s (%zu bytes at offset %" PRId64
                       ")%s%s", sf->path, what, bytes, offset, ferror(sf->f) ? ": " : ": file too short",
                       ferror(sf->f) ? strerror(errno) : "");
    return TB_OK;
}

static int open_checked(tb_st_file *sf)
{
    struct stat st;
    TB_CHECK(fstat(fileno(sf->f), &st) == 0, TB_ERR_IO, "%s: cannot stat: %s", sf->path, strerror(errno));
    int64_t size = (int64_t)st.st_size;
    TB_CHECK(size >= 8, TB_ERR_DATA, "%s: truncated: %" PRId64 " bytes, too short for the 8-byte header length",
             sf->path, size);
    unsigned char len8[8];
    TB_TRY(read_exact(sf, len8, 8, 0, "the header length"));
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | len8[i];
    TB_CHECK(hlen <= (uint64_t)(size - 8), TB_ERR_DATA, "%s: header length %" PRIu64 " is beyond the file size (%"
             PRId64 " bytes): truncated or not a safetensors file", sf->path, hlen, size);
    TB_CHECK(hlen <= TB_ST_MAX_HEADER, TB_ERR_DATA, "%s: header length %" PRIu64 " exceeds the %u-byte limit",
             sf->path, hlen, TB_ST_MAX_HEADER);
    char *text = malloc((size_t)hlen + 1);
    TB_CHECK(text != NULL, TB_ERR_NOMEM, "%s: out of memory for a %" PRIu64 "-byte header", sf->path, hlen);
    int rc = read_exact(sf, text, (size_t)hlen, 8, "the header");
    if (rc == TB_OK) {
        text[hlen] = '\0';
        sf->data_start = 8 + (int64_t)hlen;
        sf->data_size = size - sf->data_start;
        rc = parse_header(sf, text, (size_t)hlen);
    }
    free(text);
    TB_TRY(rc);
    return check_tiling(sf);
}

int tb_st_open(tb_st_file *sf, const char *path)
{
    memset(sf, 0, sizeof *sf);
    sf->path = path;
    sf->f = fopen(path, "rb");
    if (!sf->f)
        return tb_fail(errno == ENOENT ? TB_ERR_MISSING : TB_ERR_IO, "%s: cannot open checkpoint: %s", path,
                       strerror(errno));
    int rc = open_checked(sf);
    if (rc != TB_OK)
        tb_st_close(sf);
    return rc;
}

const tb_st_tensor *tb_st_find(const tb_st_file *sf, const char *name)
{
    for (int i = 0; i < sf->n; i++)
        if (!strcmp(sf->tensors[i].name, name))
            return &sf->tensors[i];
    return NULL;
}

int tb_st_read(tb_st_file *sf, const tb_st_tensor *t, void *dst)
{
    char what[160];
    snprintf(what, sizeof what, "tensor '%s'", t->name);
    return read_exact(sf, dst, (size_t)(t->end - t->begin), sf->data_start + t->begin, what);
}

/* ------------------------------------------------------------- writing */

static cJSON *json_int(int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v); /* raw: exact for any size, never "1e+09" */
    return cJSON_CreateRaw(buf);
}

static cJSON *header_json(tb_st_tensor *tensors, int n, int64_t *total)
{
    cJSON *root = cJSON_CreateObject(), *meta = cJSON_CreateObject();
    bool ok = root && meta && cJSON_AddStringToObject(meta, "format", "pt");
    if (ok)
        cJSON_AddItemToObject(root, "__metadata__", meta);
    else
        cJSON_Delete(meta);
    int64_t pos = 0;
    for (int i = 0; ok && i < n; i++) {
        tb_st_tensor *t = &tensors[i];
        int64_t numel = 1;
        for (int d = 0; d < t->ndim; d++)
            numel *= t->shape[d];
        t->begin = pos;
        t->end = pos + numel * (int64_t)tb_st_dtype_size(t->dtype);
        pos = t->end;
        cJSON *e = cJSON_CreateObject(), *sh = cJSON_CreateArray(), *of = cJSON_CreateArray();
        ok = e && sh && of && cJSON_AddStringToObject(e, "dtype", t->dtype);
        for (int d = 0; ok && d < t->ndim; d++)
            ok = cJSON_AddItemToArray(sh, json_int(t->shape[d]));
        ok = ok && cJSON_AddItemToArray(of, json_int(t->begin)) && cJSON_AddItemToArray(of, json_int(t->end));
        if (ok) {
            cJSON_AddItemToObject(e, "shape", sh);
            cJSON_AddItemToObject(e, "data_offsets", of);
            cJSON_AddItemToObject(root, t->name, e);
        } else {
            cJSON_Delete(e);
            cJSON_Delete(sh);
            cJSON_Delete(of);
        }
    }
    *total = pos;
    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

int tb_st_write_begin(tb_st_writer *w, FILE *f, const char *path, tb_st_tensor *tensors, int n)
{
    memset(w, 0, sizeof *w);
    w->f = f;
    w->path = path;
    cJSON *root = header_json(tensors, n, &w->expected);
    char *text = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    TB_CHECK(text != NULL, TB_ERR_NOMEM, "%s: out of memory building the safetensors header", path);
    size_t len = strlen(text);
    size_t padded = (len + 7) & ~(size_t)7; /* the data starts 8-byte aligned */
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    bool ok = fwrite(len8, 1, 8, f) == 8 && fwrite(text, 1, len, f) == len;
    for (size_t i = len; ok && i < padded; i++)
        ok = fputc(' ', f) != EOF;
    free(text);
    TB_CHECK(ok, TB_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return TB_OK;
}

int tb_st_write_data(tb_st_writer *w, const void *data, size_t bytes)
{
    TB_CHECK(fwrite(data, 1, bytes, w->f) == bytes, TB_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
    w->written += (int64_t)bytes;
    return TB_OK;
}

int tb_st_write_end(tb_st_writer *w)
{
    TB_CHECK(w->written == w->expected, TB_ERR_INTERNAL, "%s: wrote %" PRId64 " data bytes, the header promises %"
             PRId64, w->path, w->written, w->expected);
    TB_CHECK(fflush(w->f) == 0 && !ferror(w->f), TB_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
    return TB_OK;
}
