/* A graph's state_dict <-> a safetensors file. See safetensors.h. */
#include "models/safetensors.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/error.h"
#include "models/safetensors_file.h"

/* One state_dict entry of the graph. */
typedef enum entry_kind { ENTRY_PARAM, ENTRY_BUFFER, ENTRY_BATCHES } entry_kind;

typedef struct entry {
    tb_st_tensor t;           /* name, dtype and PyTorch shape (t.name points into name) */
    char name[TB_NAME_LEN + 32];
    entry_kind kind;
    int index;                /* parameter or buffer index */
    bool conv;                /* OHWI in the graph, OIHW in the file */
} entry;

typedef struct state {
    entry *e;
    int n, cap;
} state;

static int push(state *s, entry_kind kind, int index, const char *name, const char *dtype, int ndim,
                const int64_t *shape)
{
    if (s->n == s->cap) {
        int ncap = s->cap ? 2 * s->cap : 64;
        entry *p = realloc(s->e, sizeof *p * (size_t)ncap);
        TB_CHECK(p != NULL, TB_ERR_NOMEM, "checkpoint: out of memory");
        s->e = p;
        s->cap = ncap;
    }
    entry *e = &s->e[s->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->t.dtype, sizeof e->t.dtype, "%s", dtype);
    e->t.ndim = ndim;
    if (ndim > 0)
        memcpy(e->t.shape, shape, sizeof(int64_t) * (size_t)ndim);
    e->kind = kind;
    e->index = index;
    return TB_OK;
}

static int push_param(state *s, tb_graph *g, int i)
{
    const tb_param *p = tb_graph_param(g, i);
    const tb_tensor *m = &p->master;
    int rc;
    if (p->role == TB_ROLE_CONV_WEIGHT && m->ndim == 4) {
        int64_t oihw[4] = {m->shape[0], m->shape[3], m->shape[1], m->shape[2]};
        rc = push(s, ENTRY_PARAM, i, p->name, "F32", 4, oihw);
        s->e[s->n - 1].conv = true;
    } else {
        rc = push(s, ENTRY_PARAM, i, p->name, "F32", m->ndim, m->shape);
    }
    return rc;
}

/* After a BN's bias come its buffers, in PyTorch's order. */
static int push_bn_buffers(state *s, tb_graph *g, const char *module)
{
    static const char *const suffixes[2] = {"running_mean", "running_var"};
    char want[TB_NAME_LEN + 32];
    for (int k = 0; k < 2; k++) {
        snprintf(want, sizeof want, "%s.%s", module, suffixes[k]);
        for (int b = 0; b < tb_graph_n_buffers(g); b++) {
            tb_buffer *buf = tb_graph_buffer(g, b);
            if (!strcmp(buf->name, want))
                TB_TRY(push(s, ENTRY_BUFFER, b, buf->name, "F32", buf->t.ndim, buf->t.shape));
        }
    }
    snprintf(want, sizeof want, "%s.num_batches_tracked", module);
    return push(s, ENTRY_BATCHES, -1, want, "I64", 0, NULL);
}

static int state_of(state *s, tb_graph *g)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < tb_graph_n_params(g); i++) {
        const tb_param *p = tb_graph_param(g, i);
        TB_TRY(push_param(s, g, i));
        size_t len = strlen(p->name);
        if (p->role == TB_ROLE_BN_BETA && len > 5 && !strcmp(p->name + len - 5, ".bias")) {
            char module[TB_NAME_LEN];
            snprintf(module, sizeof module, "%.*s", (int)(len - 5), p->name);
            TB_TRY(push_bn_buffers(s, g, module));
        }
    }
    for (int i = 0; i < s->n; i++)
        s->e[i].t.name = s->e[i].name;
    return TB_OK;
}

static int64_t numel_of(const tb_st_tensor *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= t->shape[d];
    return n;
}

/* OHWI {k, r, s, c} <-> OIHW {k, c, r, s} */
static void ohwi_to_oihw(float *dst, const float *src, const int64_t *oihw)
{
    int64_t k = oihw[0], c = oihw[1], r = oihw[2], sw = oihw[3];
    for (int64_t o = 0; o < k; o++)
        for (int64_t y = 0; y < r; y++)
            for (int64_t x = 0; x < sw; x++)
                for (int64_t i = 0; i < c; i++)
                    dst[((o * c + i) * r + y) * sw + x] = src[((o * r + y) * sw + x) * c + i];
}

static void oihw_to_ohwi(float *dst, const float *src, const int64_t *oihw)
{
    int64_t k = oihw[0], c = oihw[1], r = oihw[2], sw = oihw[3];
    for (int64_t o = 0; o < k; o++)
        for (int64_t y = 0; y < r; y++)
            for (int64_t x = 0; x < sw; x++)
                for (int64_t i = 0; i < c; i++)
                    dst[((o * r + y) * sw + x) * c + i] = src[((o * c + i) * r + y) * sw + x];
}

static int64_t largest(const state *s)
{
    int64_t most = 1;
    for (int i = 0; i < s->n; i++) {
        int64_t n = numel_of(&s->e[i].t);
        most = n > most ? n : most;
    }
    return most;
}

/* ----------------------------------------------------------------- save */

static int write_entry(tb_st_writer *w, tb_graph *g, const entry *e, float *a, float *b)
{
    int64_t n = numel_of(&e->t);
    switch (e->kind) {
    case ENTRY_PARAM:
        TB_TRY(tb_graph_param_download(g, e->index, e->conv ? b : a));
        if (e->conv)
            ohwi_to_oihw(a, b, e->t.shape);
        break;
    case ENTRY_BUFFER: TB_TRY(tb_download(tb_graph_backend(g), a, &tb_graph_buffer(g, e->index)->t)); break;
    case ENTRY_BATCHES: {
        int64_t v = tb_graph_bn_batches_tracked(g);
        return tb_st_write_data(w, &v, sizeof v);
    }
    }
    return tb_st_write_data(w, a, (size_t)n * sizeof(float));
}

static int save_to(tb_graph *g, const state *s, FILE *f, const char *path)
{
    tb_st_tensor *ts = malloc(sizeof *ts * (s->n > 0 ? (size_t)s->n : 1u));
    int64_t most = largest(s);
    float *a = malloc((size_t)most * sizeof *a), *b = malloc((size_t)most * sizeof *b);
    int rc = (ts && a && b) ? TB_OK : tb_fail(TB_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; rc == TB_OK && i < s->n; i++)
        ts[i] = s->e[i].t;
    tb_st_writer w;
    if (rc == TB_OK)
        rc = tb_st_write_begin(&w, f, path, ts, s->n);
    for (int i = 0; rc == TB_OK && i < s->n; i++)
        rc = write_entry(&w, g, &s->e[i], a, b);
    if (rc == TB_OK)
        rc = tb_st_write_end(&w);
    free(ts);
    free(a);
    free(b);
    return rc;
}

int tb_safetensors_save(tb_graph *g, const char *path)
{
    char tmp[4096];
    TB_CHECK(snprintf(tmp, sizeof tmp, "%s.tmp", path) < (int)sizeof tmp, TB_ERR_INVALID,
             "checkpoint path is too long: %s", path);
    state s;
    int rc = state_of(&s, g);
    FILE *f = rc == TB_OK ? fopen(tmp, "wb") : NULL;
    if (rc == TB_OK && !f)
        rc = tb_fail(TB_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    if (f) {
        rc = save_to(g, &s, f, path);
        if (fclose(f) != 0 && rc == TB_OK)
            rc = tb_fail(TB_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
        if (rc == TB_OK && rename(tmp, path) != 0)
            rc = tb_fail(TB_ERR_IO, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
        if (rc != TB_OK)
            remove(tmp);
    }
    free(s.e);
    return rc;
}

/* ----------------------------------------------------------------- load */

static bool selected(const char *name, const char *const *prefixes, int n_prefixes)
{
    if (!prefixes)
        return true;
    for (int i = 0; i < n_prefixes; i++)
        if (!strncmp(name, prefixes[i], strlen(prefixes[i])))
            return true;
    return false;
}

static bool dtype_ok(const entry *e, const char *file_dtype)
{
    if (e->kind == ENTRY_BATCHES)
        return !strcmp(file_dtype, "I64");
    return !strcmp(file_dtype, "F32") || !strcmp(file_dtype, "F16") || !strcmp(file_dtype, "BF16");
}

/* A growing list of problems of one kind: "missing: a, b". */
typedef struct problems {
    char text[1800];
    size_t len;
    int count, shown;
} problems;

static void note(problems *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void note(problems *p, const char *fmt, ...)
{
    char item[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(item, sizeof item, fmt, ap);
    va_end(ap);
    p->count++;
    size_t need = strlen(item) + 2;
    if (p->len + need + 40 >= sizeof p->text)
        return; /* the count still grows: the message says how many were left out */
    p->len += (size_t)snprintf(p->text + p->len, sizeof p->text - p->len, "%s%s", p->shown ? "; " : "", item);
    p->shown++;
}

static int check_against(const state *s, const tb_st_file *sf, const char *const *prefixes, int n_prefixes)
{
    problems pr = {.len = 0};
    int wanted = 0;
    for (int i = 0; i < s->n; i++) {
        const entry *e = &s->e[i];
        if (!selected(e->name, prefixes, n_prefixes))
            continue;
        wanted++;
        const tb_st_tensor *t = tb_st_find(sf, e->name);
        char want[96], got[96];
        if (!t)
            note(&pr, "missing tensor '%s'", e->name);
        else if (!dtype_ok(e, t->dtype))
            note(&pr, "'%s' has dtype %s, expected %s", e->name, t->dtype,
                 e->kind == ENTRY_BATCHES ? "I64" : "F32, F16 or BF16");
        else if (t->ndim != e->t.ndim || memcmp(t->shape, e->t.shape, sizeof(int64_t) * (size_t)t->ndim))
            note(&pr, "'%s' has shape %s in the file, the model expects %s", e->name,
                 tb_st_shape_str(t->shape, t->ndim, got, sizeof got),
                 tb_st_shape_str(e->t.shape, e->t.ndim, want, sizeof want));
    }
    for (int i = 0; i < sf->n; i++) {
        const char *name = sf->tensors[i].name;
        if (!selected(name, prefixes, n_prefixes))
            continue;
        bool known = false;
        for (int k = 0; k < s->n && !known; k++)
            known = !strcmp(s->e[k].name, name);
        if (!known)
            note(&pr, "unexpected tensor '%s'", name);
    }
    TB_CHECK(wanted > 0, TB_ERR_INVALID, "%s: no tensor of the model matches the %d prefixes given (first: '%s')",
             sf->path, n_prefixes, n_prefixes > 0 ? prefixes[0] : "");
    if (!pr.count)
        return TB_OK;
    if (pr.shown < pr.count)
        return tb_fail(TB_ERR_DATA, "%s: the checkpoint does not match the model (%d problems): %s; ... and %d more",
                       sf->path, pr.count, pr.text, pr.count - pr.shown);
    return tb_fail(TB_ERR_DATA, "%s: the checkpoint does not match the model (%d problem%s): %s", sf->path, pr.count,
                   pr.count == 1 ? "" : "s", pr.text);
}

/* Reads one tensor as f32 into a (b is scratch). */
static int read_f32(tb_st_file *sf, const tb_st_tensor *t, float *a, float *b)
{
    int64_t n = numel_of(t);
    if (!strcmp(t->dtype, "F32"))
        return tb_st_read(sf, t, a);
    TB_TRY(tb_st_read(sf, t, b)); /* 2-byte elements fit in b's first half */
    tb_convert_to_f32(a, b, !strcmp(t->dtype, "F16") ? TB_F16 : TB_BF16, n);
    return TB_OK;
}

static int load_entry(tb_graph *g, tb_st_file *sf, const entry *e, float *a, float *b, int64_t *batches)
{
    const tb_st_tensor *t = tb_st_find(sf, e->name);
    if (e->kind == ENTRY_BATCHES) {
        int64_t v;
        TB_TRY(tb_st_read(sf, t, &v));
        *batches = v > *batches ? v : *batches;
        return TB_OK;
    }
    TB_TRY(read_f32(sf, t, a, b));
    if (e->kind == ENTRY_BUFFER)
        return tb_upload(tb_graph_backend(g), &tb_graph_buffer(g, e->index)->t, a);
    if (e->conv) {
        oihw_to_ohwi(b, a, e->t.shape);
        return tb_graph_param_upload(g, e->index, b);
    }
    return tb_graph_param_upload(g, e->index, a);
}

static int load_checked(tb_graph *g, tb_st_file *sf, const state *s, const char *const *prefixes, int n_prefixes)
{
    TB_TRY(check_against(s, sf, prefixes, n_prefixes));
    int64_t most = largest(s);
    float *a = malloc((size_t)most * sizeof *a), *b = malloc((size_t)most * sizeof *b);
    int rc = (a && b) ? TB_OK : tb_fail(TB_ERR_NOMEM, "%s: out of memory", sf->path);
    int64_t batches = -1;
    for (int i = 0; rc == TB_OK && i < s->n; i++)
        if (selected(s->e[i].name, prefixes, n_prefixes))
            rc = load_entry(g, sf, &s->e[i], a, b, &batches);
    free(a);
    free(b);
    TB_TRY(rc);
    if (batches >= 0)
        tb_graph_set_bn_batches_tracked(g, batches);
    return tb_graph_sync_params(g);
}

int tb_safetensors_load_prefixes(tb_graph *g, const char *path, const char *const *prefixes, int n_prefixes)
{
    state s;
    tb_st_file sf;
    int rc = state_of(&s, g);
    if (rc == TB_OK && (rc = tb_st_open(&sf, path)) == TB_OK) {
        rc = load_checked(g, &sf, &s, prefixes, n_prefixes);
        tb_st_close(&sf);
    }
    free(s.e);
    return rc;
}

int tb_safetensors_load(tb_graph *g, const char *path) { return tb_safetensors_load_prefixes(g, path, NULL, 0); }
