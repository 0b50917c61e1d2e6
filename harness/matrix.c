/* Matrix files: the top-level keys, base config, axes, steps/rows, seeds,
 * baseline and reference values. Expansion into rows and runs is in
 * matrix_expand.c. */
#include "harness/matrix.h"

#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/json_util.h"
#include "harness/matrix_internal.h"
#include "harness/strbuf.h"
#include "kernels/error.h"

static const char *const matrix_keys[] = {"name", "description", "base", "base_label", "axes", "steps",
                                          "rows", "seeds", "exclude", "include", "baseline", "reference"};
#define N_MATRIX_KEYS (sizeof matrix_keys / sizeof matrix_keys[0])

static int fail_invalid(const char *origin, const char *what, const char *expected, const cJSON *v)
{
    char shown[80];
    tb_json_preview(v, shown, sizeof shown);
    return tb_fail(TB_ERR_INVALID, "%s: %s: expected %s, got %s (%s)", origin, what, expected, shown,
                   tb_json_type_name(v));
}

static int check_matrix_keys(const cJSON *root, const char *origin)
{
    const char *dup = tb_json_duplicate_key(root);
    if (dup)
        return tb_fail(TB_ERR_INVALID, "%s: key '%s' is given twice", origin, dup);
    for (const cJSON *k = root->child; k; k = k->next) {
        bool known = false;
        for (size_t i = 0; i < N_MATRIX_KEYS; i++)
            known = known || !strcmp(k->string, matrix_keys[i]);
        if (known)
            continue;
        const char *near = tb_nearest_name(k->string, matrix_keys, N_MATRIX_KEYS);
        if (near)
            return tb_fail(TB_ERR_INVALID, "%s: unknown matrix key '%s' (did you mean '%s'?)", origin, k->string,
                           near);
        if (tb_config_key_exists(k->string))
            return tb_fail(TB_ERR_INVALID, "%s: unknown matrix key '%s' (run config keys go inside \"base\")",
                           origin, k->string);
        return tb_fail(TB_ERR_INVALID,
                       "%s: unknown matrix key '%s'; valid keys: name, description, base, base_label, axes, "
                       "steps, rows, seeds, exclude, include, baseline, reference",
                       origin, k->string);
    }
    return TB_OK;
}

/* A string member that must fit in `size` bytes; `required` or "" when absent. */
static int get_string(const cJSON *obj, const char *key, const char *origin, bool required, char *dst, size_t size)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) {
        if (required)
            return tb_fail(TB_ERR_INVALID, "%s: missing \"%s\"", origin, key);
        dst[0] = '\0';
        return TB_OK;
    }
    if (!cJSON_IsString(v))
        return fail_invalid(origin, key, "a string", v);
    if (strlen(v->valuestring) >= size)
        return tb_fail(TB_ERR_INVALID, "%s: %s is too long (at most %zu characters)", origin, key, size - 1);
    if (required && !v->valuestring[0])
        return tb_fail(TB_ERR_INVALID, "%s: %s is empty", origin, key);
    snprintf(dst, size, "%s", v->valuestring);
    return TB_OK;
}

static int load_base(const cJSON *root, const char *origin, const char *dir, tb_run_config *base)
{
    tb_config_defaults(base);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(root, "base");
    if (!b)
        return TB_OK; /* every key at its default */
    if (cJSON_IsString(b)) {
        char path[TB_PATH_MAX * 2];
        if (b->valuestring[0] == '/' || !dir)
            tb_mx_where(path, sizeof path, "%s", b->valuestring);
        else
            tb_mx_where(path, sizeof path, "%s/%s", dir, b->valuestring);
        cJSON *file = NULL;
        TB_TRY(tb_err_context(tb_json_load_file(path, &file), "%s: base", origin));
        int rc = tb_config_apply_json(base, file, path);
        cJSON_Delete(file);
        return rc;
    }
    if (!cJSON_IsObject(b))
        return fail_invalid(origin, "base", "a run config object or a config file name", b);
    char where[TB_ORIGIN_MAX];
    tb_mx_where(where, sizeof where, "%s: base", origin);
    return tb_config_apply_json(base, b, where);
}

static int parse_axes(const cJSON *root, tb_mx_spec *s)
{
    const cJSON *axes = cJSON_GetObjectItemCaseSensitive(root, "axes");
    if (!axes)
        return TB_OK;
    if (!cJSON_IsArray(axes))
        return fail_invalid(s->origin, "axes", "an array of {\"key\", \"values\"}", axes);
    int n = cJSON_GetArraySize(axes);
    s->axes = calloc((size_t)(n > 0 ? n : 1), sizeof *s->axes);
    if (!s->axes)
        return tb_fail(TB_ERR_NOMEM, "%s: out of memory", s->origin);
    int a = 0;
    for (const cJSON *ax = axes->child; ax; ax = ax->next, a++) {
        tb_mx_axis *x = &s->axes[a];
        s->n_axes = a + 1;
        tb_mx_where(x->origin, sizeof x->origin, "%s: axes[%d]", s->origin, a);
        if (!cJSON_IsObject(ax))
            return fail_invalid(x->origin, "axis", "an object {\"key\", \"values\", \"labels\"}", ax);
        for (const cJSON *k = ax->child; k; k = k->next)
            if (strcmp(k->string, "key") && strcmp(k->string, "values") && strcmp(k->string, "labels"))
                return tb_fail(TB_ERR_INVALID, "%s: unknown axis key '%s' (an axis has key, values, labels)",
                               x->origin, k->string);
        TB_TRY(get_string(ax, "key", x->origin, true, x->key, sizeof x->key));
        if (!strcmp(x->key, "seed"))
            return tb_fail(TB_ERR_INVALID, "%s: seed: vary the seed with the matrix's \"seeds\"", x->origin);
        if (!tb_config_key_exists(x->key)) {
            tb_run_config probe = s->base;
            cJSON *null_value = cJSON_CreateNull();
            int rc = tb_config_set(&probe, x->key, null_value, x->origin); /* names the nearest key */
            cJSON_Delete(null_value);
            return rc != TB_OK ? rc : tb_fail(TB_ERR_INVALID, "%s: unknown key '%s'", x->origin, x->key);
        }
        for (int b = 0; b < a; b++)
            if (!strcmp(s->axes[b].key, x->key))
                return tb_fail(TB_ERR_INVALID, "%s: key '%s' is already axes[%d]", x->origin, x->key, b);
        x->values = cJSON_GetObjectItemCaseSensitive(ax, "values");
        if (!cJSON_IsArray(x->values) || cJSON_GetArraySize(x->values) == 0)
            return fail_invalid(x->origin, "values", "a non-empty array", x->values);
        x->n = cJSON_GetArraySize(x->values);
        x->labels = calloc((size_t)x->n, sizeof *x->labels);
        if (!x->labels)
            return tb_fail(TB_ERR_NOMEM, "%s: out of memory", x->origin);
        const cJSON *labels = cJSON_GetObjectItemCaseSensitive(ax, "labels");
        if (labels && (!cJSON_IsArray(labels) || cJSON_GetArraySize(labels) != x->n))
            return tb_fail(TB_ERR_INVALID, "%s: labels: expected an array of %d strings, one per value",
                           x->origin, x->n);
        char short_key[128];
        tb_mx_short_key(x->key, short_key, sizeof short_key);
        int i = 0;
        for (const cJSON *v = x->values->child; v; v = v->next, i++) {
            char where[TB_ORIGIN_MAX + 32];
            tb_mx_where(where, sizeof where, "%s.values[%d]", x->origin, i);
            tb_run_config probe = s->base; /* type and range errors surface here, with their place */
            TB_TRY(tb_config_set(&probe, x->key, v, where));
            char text[TB_LABEL_MAX];
            const cJSON *l = labels ? cJSON_GetArrayItem(labels, i) : NULL;
            if (l) {
                if (!cJSON_IsString(l) || !l->valuestring[0] || strlen(l->valuestring) >= TB_LABEL_MAX / 2)
                    return tb_fail(TB_ERR_INVALID, "%s: labels[%d]: expected a non-empty string", x->origin, i);
                snprintf(text, sizeof text, "%s", l->valuestring);
            } else if (cJSON_IsBool(v)) {
                snprintf(text, sizeof text, "%s%s", cJSON_IsTrue(v) ? "" : "no ", short_key);
            } else {
                char val[TB_LABEL_MAX / 2];
                tb_mx_value_text(v, val, sizeof val);
                snprintf(text, sizeof text, "%s=%s", short_key, val);
            }
            for (int j = 0; j < i; j++)
                if (!strcmp(x->labels[j], text))
                    return tb_fail(TB_ERR_INVALID, "%s: values[%d] and values[%d] have the same label '%s'",
                                   x->origin, j, i, text);
            x->labels[i] = strdup(text);
            if (!x->labels[i])
                return tb_fail(TB_ERR_NOMEM, "%s: out of memory", x->origin);
        }
    }
    return TB_OK;
}

/* One entry of "steps" or "rows": {"label", "set"}. */
static int parse_level(const cJSON *e, const char *what, int i, const char *origin, bool cumulative,
                       tb_mx_level *lv, const tb_run_config *base)
{
    char where[TB_ORIGIN_MAX];
    tb_mx_where(where, sizeof where, "%s: %s[%d]", origin, what, i);
    if (!cJSON_IsObject(e))
        return fail_invalid(where, what, "an object {\"label\", \"set\"}", e);
    for (const cJSON *k = e->child; k; k = k->next)
        if (strcmp(k->string, "label") && strcmp(k->string, "set"))
            return tb_fail(TB_ERR_INVALID, "%s: unknown key '%s' (a %s entry has label and set)", where,
                           k->string, what);
    TB_TRY(get_string(e, "label", where, false, lv->label, sizeof lv->label / 2));
    lv->set = cJSON_GetObjectItemCaseSensitive(e, "set");
    if (lv->set && !cJSON_IsObject(lv->set))
        return fail_invalid(where, "set", "an object of key paths and values", lv->set);
    tb_mx_where(lv->origin, sizeof lv->origin, "%s.set", where);
    if (lv->set) { /* check keys and values now, with their place in the file */
        tb_run_config probe = *base;
        TB_TRY(tb_mx_apply_set(&probe, lv->set, lv->origin));
    }
    if (!lv->label[0]) {
        if (!lv->set || !lv->set->child)
            return tb_fail(TB_ERR_INVALID, "%s: give a label or a non-empty set", where);
        tb_mx_set_label(lv->set, cumulative ? "+ " : "", lv->label, sizeof lv->label / 2);
    }
    return TB_OK;
}

static int parse_levels(const cJSON *root, tb_mx_spec *s)
{
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(root, "steps");
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(root, "rows");
    if (steps && rows)
        return tb_fail(TB_ERR_INVALID, "%s: give either \"steps\" (cumulative) or \"rows\" (independent), not both",
                       s->origin);
    if (!steps && !rows)
        return TB_OK;
    const cJSON *list = steps ? steps : rows;
    const char *what = steps ? "steps" : "rows";
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0)
        return fail_invalid(s->origin, what, "a non-empty array of {\"label\", \"set\"}", list);
    int n = cJSON_GetArraySize(list) + (steps ? 1 : 0);
    s->levels = calloc((size_t)n, sizeof *s->levels);
    if (!s->levels)
        return tb_fail(TB_ERR_NOMEM, "%s: out of memory", s->origin);
    s->mode = steps ? TB_MX_STEPS : TB_MX_ROWS;
    int first = 0;
    if (steps) {
        TB_TRY(get_string(root, "base_label", s->origin, false, s->levels[0].label, sizeof s->levels[0].label / 2));
        if (!s->levels[0].label[0])
            snprintf(s->levels[0].label, sizeof s->levels[0].label, "baseline");
        tb_mx_where(s->levels[0].origin, sizeof s->levels[0].origin, "%s: base", s->origin);
        first = 1;
    }
    int i = 0;
    tb_run_config cumulative = s->base;
    for (const cJSON *e = list->child; e; e = e->next, i++) {
        tb_mx_level *lv = &s->levels[first + i];
        TB_TRY(parse_level(e, what, i, s->origin, steps != NULL, lv, steps ? &cumulative : &s->base));
        if (steps && lv->set)
            TB_TRY(tb_mx_apply_set(&cumulative, lv->set, lv->origin));
    }
    s->n_levels = n;
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++)
            if (!strcmp(s->levels[a].label, s->levels[b].label))
                return tb_fail(TB_ERR_INVALID, "%s: two %s have the label '%s'", s->origin, what,
                               s->levels[a].label);
    return TB_OK;
}

static int parse_seeds(const cJSON *root, const char *origin, const tb_run_config *base, tb_matrix *m)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "seeds");
    const double max_seed = 9007199254740992.0;
    if (!v) {
        m->seeds = malloc(sizeof *m->seeds);
        if (!m->seeds)
            return tb_fail(TB_ERR_NOMEM, "%s: out of memory", origin);
        m->seeds[0] = base->seed;
        m->n_seeds = 1;
        return TB_OK;
    }
    if (cJSON_IsNumber(v)) { /* a count: base.seed, base.seed + 1, ... */
        if (v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 || v->valuedouble > 1000)
            return tb_fail(TB_ERR_INVALID, "%s: seeds: a count must be an integer in [1, 1000], got %g", origin,
                           v->valuedouble);
        m->n_seeds = (int)v->valuedouble;
        m->seeds = malloc((size_t)m->n_seeds * sizeof *m->seeds);
        if (!m->seeds)
            return tb_fail(TB_ERR_NOMEM, "%s: out of memory", origin);
        for (int i = 0; i < m->n_seeds; i++)
            m->seeds[i] = base->seed + (uint64_t)i;
        return TB_OK;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0)
        return fail_invalid(origin, "seeds", "a non-empty array of integers or a count", v);
    m->n_seeds = cJSON_GetArraySize(v);
    m->seeds = malloc((size_t)m->n_seeds * sizeof *m->seeds);
    if (!m->seeds)
        return tb_fail(TB_ERR_NOMEM, "%s: out of memory", origin);
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < 0 ||
            e->valuedouble > max_seed) {
            char what[32];
            snprintf(what, sizeof what, "seeds[%d]", i);
            return fail_invalid(origin, what, "an integer in [0, 2^53]", e);
        }
        m->seeds[i] = (uint64_t)e->valuedouble;
        for (int j = 0; j < i; j++)
            if (m->seeds[j] == m->seeds[i])
                return tb_fail(TB_ERR_INVALID, "%s: seeds: %llu is listed twice", origin,
                               (unsigned long long)m->seeds[i]);
    }
    return TB_OK;
}

static int find_row(const tb_matrix *m, const char *label)
{
    for (int i = 0; i < m->n_rows; i++)
        if (!strcmp(m->rows[i].label, label))
            return i;
    return -1;
}

static int parse_baseline(const cJSON *root, const char *origin, tb_matrix *m)
{
    TB_TRY(get_string(root, "baseline", origin, false, m->baseline, sizeof m->baseline));
    if (!m->baseline[0]) {
        snprintf(m->baseline, sizeof m->baseline, "%s", m->rows[0].label);
        return TB_OK;
    }
    if (find_row(m, m->baseline) < 0) {
        char hint[TB_LABEL_MAX + 32];
        tb_mx_label_hint(m, m->baseline, hint, sizeof hint);
        return tb_fail(TB_ERR_INVALID, "%s: baseline: no row is labelled '%s'%s", origin, m->baseline, hint);
    }
    return TB_OK;
}

static int parse_reference(const cJSON *root, const char *origin, tb_matrix *m)
{
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(root, "reference");
    if (!ref)
        return TB_OK;
    if (!cJSON_IsObject(ref))
        return fail_invalid(origin, "reference", "an object {row label: {metric: value}}", ref);
    int n = 0;
    for (const cJSON *r = ref->child; r; r = r->next)
        n += cJSON_IsObject(r) ? cJSON_GetArraySize(r) : 0;
    m->refs = calloc((size_t)(n > 0 ? n : 1), sizeof *m->refs);
    if (!m->refs)
        return tb_fail(TB_ERR_NOMEM, "%s: out of memory", origin);
    for (const cJSON *r = ref->child; r; r = r->next) {
        char where[TB_ORIGIN_MAX];
        tb_mx_where(where, sizeof where, "%s: reference", origin);
        if (find_row(m, r->string) < 0) {
            char hint[TB_LABEL_MAX + 32];
            tb_mx_label_hint(m, r->string, hint, sizeof hint);
            return tb_fail(TB_ERR_INVALID, "%s: no row is labelled '%s'%s", where, r->string, hint);
        }
        if (!cJSON_IsObject(r))
            return fail_invalid(where, r->string, "an object {metric: value}", r);
        for (const cJSON *v = r->child; v; v = v->next) {
            if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
                char what[TB_LABEL_MAX + 64];
                snprintf(what, sizeof what, "%s.%s", r->string, v->string);
                return fail_invalid(where, what, "a number", v);
            }
            if (strlen(v->string) >= TB_METRIC_NAME_MAX)
                return tb_fail(TB_ERR_INVALID, "%s: metric name '%s' is too long", where, v->string);
            tb_matrix_reference *x = &m->refs[m->n_refs++];
            snprintf(x->label, sizeof x->label, "%s", r->string);
            snprintf(x->metric, sizeof x->metric, "%s", v->string);
            x->value = v->valuedouble;
        }
    }
    return TB_OK;
}

static void spec_free(tb_mx_spec *s)
{
    for (int a = 0; a < s->n_axes; a++) {
        for (int i = 0; s->axes[a].labels && i < s->axes[a].n; i++)
            free(s->axes[a].labels[i]);
        free(s->axes[a].labels);
    }
    free(s->axes);
    free(s->levels);
}

int tb_matrix_from_json(const cJSON *root, const char *origin, const char *dir, tb_matrix *m)
{
    memset(m, 0, sizeof *m);
    if (!origin)
        origin = "matrix";
    if (!cJSON_IsObject(root))
        return tb_fail(TB_ERR_INVALID, "%s: expected a JSON object (the matrix), got %s", origin,
                       tb_json_type_name(root));
    tb_mx_spec s;
    memset(&s, 0, sizeof s);
    s.origin = origin;
    int rc = check_matrix_keys(root, origin);
    char description[4096];
    if (rc == TB_OK)
        rc = get_string(root, "name", origin, true, m->name, sizeof m->name);
    if (rc == TB_OK)
        rc = get_string(root, "description", origin, false, description, sizeof description);
    if (rc == TB_OK && !(m->description = strdup(description)))
        rc = tb_fail(TB_ERR_NOMEM, "%s: out of memory", origin);
    if (rc == TB_OK)
        rc = load_base(root, origin, dir, &s.base);
    if (rc == TB_OK)
        rc = parse_axes(root, &s);
    if (rc == TB_OK)
        rc = parse_levels(root, &s);
    if (rc == TB_OK && !s.levels && cJSON_GetObjectItemCaseSensitive(root, "base_label"))
        rc = tb_fail(TB_ERR_INVALID, "%s: base_label names the base row of \"steps\"; this matrix has none", origin);
    s.exclude = cJSON_GetObjectItemCaseSensitive(root, "exclude");
    s.include = cJSON_GetObjectItemCaseSensitive(root, "include");
    if (rc == TB_OK)
        rc = parse_seeds(root, origin, &s.base, m);
    if (rc == TB_OK)
        rc = tb_mx_build_rows(&s, m);
    if (rc == TB_OK)
        rc = parse_baseline(root, origin, m);
    if (rc == TB_OK)
        rc = parse_reference(root, origin, m);
    if (rc == TB_OK)
        rc = tb_mx_build_runs(&s, m);
    if (rc == TB_OK && !(m->definition = tb_json_canonical(root)))
        rc = tb_fail(TB_ERR_NOMEM, "%s: out of memory", origin);
    if (rc == TB_OK && !m->file && !(m->file = strdup("")))
        rc = tb_fail(TB_ERR_NOMEM, "%s: out of memory", origin);
    spec_free(&s);
    if (rc != TB_OK)
        tb_matrix_free(m);
    return rc;
}

int tb_matrix_load(const char *path, tb_matrix *m)
{
    memset(m, 0, sizeof *m);
    cJSON *root = NULL;
    TB_TRY(tb_json_load_file(path, &root));
    char *copy = strdup(path);
    if (!copy) {
        cJSON_Delete(root);
        return tb_fail(TB_ERR_NOMEM, "%s: out of memory", path);
    }
    int rc = tb_matrix_from_json(root, path, dirname(copy), m);
    free(copy);
    cJSON_Delete(root);
    if (rc == TB_OK) {
        free(m->file);
        m->file = strdup(path);
        if (!m->file) {
            tb_matrix_free(m);
            return tb_fail(TB_ERR_NOMEM, "%s: out of memory", path);
        }
    }
    return rc;
}

void tb_matrix_free(tb_matrix *m)
{
    for (int d = 0; d < m->n_dims; d++) {
        for (int i = 0; i < m->dims[d].n_levels; i++)
            free(m->dims[d].levels[i]);
        free(m->dims[d].levels);
    }
    free(m->dims);
    for (int r = 0; r < m->n_rows; r++)
        free(m->rows[r].levels);
    free(m->rows);
    for (int i = 0; i < m->n_runs; i++)
        free(m->runs[i].config_json);
    free(m->runs);
    free(m->seeds);
    free(m->refs);
    free(m->description);
    free(m->file);
    free(m->definition);
    memset(m, 0, sizeof *m);
}

bool tb_matrix_in_shard(const tb_matrix *m, int i, int shard, int count)
{
    if (count <= 1)
        return true;
    return m->runs[i].shard_key % count == shard - 1;
}

const char *tb_matrix_run_label(const tb_matrix *m, int i) { return m->rows[m->runs[i].row].label; }

char *tb_matrix_dims_json(const tb_matrix *m)
{
    cJSON *arr = cJSON_CreateArray();
    for (int d = 0; arr && d < m->n_dims; d++) {
        cJSON *o = cJSON_CreateObject();
        cJSON *levels = cJSON_CreateStringArray((const char *const *)m->dims[d].levels, m->dims[d].n_levels);
        if (!o || !levels || !cJSON_AddStringToObject(o, "name", m->dims[d].name)) {
            cJSON_Delete(o);
            cJSON_Delete(levels);
            cJSON_Delete(arr);
            return NULL;
        }
        cJSON_AddItemToObject(o, "levels", levels);
        cJSON_AddItemToArray(arr, o);
    }
    char *s = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    return s;
}

char *tb_matrix_parts_json(const tb_matrix *m, int row)
{
    const tb_matrix_row *r = &m->rows[row];
    cJSON *o = cJSON_CreateObject();
    for (int d = 0; o && r->levels && d < m->n_dims; d++) {
        if (!cJSON_AddStringToObject(o, m->dims[d].name, m->dims[d].levels[r->levels[d]])) {
            cJSON_Delete(o);
            return NULL;
        }
    }
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

char *tb_matrix_reference_json(const tb_matrix *m)
{
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; o && i < m->n_refs; i++) {
        cJSON *row = cJSON_GetObjectItemCaseSensitive(o, m->refs[i].label);
        if (!row)
            row = cJSON_AddObjectToObject(o, m->refs[i].label);
        if (!row || !cJSON_AddNumberToObject(row, m->refs[i].metric, m->refs[i].value)) {
            cJSON_Delete(o);
            return NULL;
        }
    }
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}
