/* Matrix expansion: the grid of axes x steps/rows, exclude and include,
 * readable labels, then runs (rows x seeds) with distillation teachers first. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/json_util.h"
#include "harness/matrix_internal.h"
#include "kernels/error.h"

void tb_mx_where(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

/* ---- labels -------------------------------------------------------------- */

const char *tb_mx_short_key(const char *key, char *buf, size_t size)
{
    /* a last component that means little alone keeps its section: schedule.type */
    static const char *const generic[] = {"type", "name", "root", "checkpoint", "teacher"};
    const char *last = strrchr(key, '.');
    if (!last) {
        snprintf(buf, size, "%s", key);
        return buf;
    }
    for (size_t i = 0; i < sizeof generic / sizeof generic[0]; i++) {
        if (!strcmp(last + 1, generic[i])) {
            const char *start = last;
            while (start > key && start[-1] != '.')
                start--;
            snprintf(buf, size, "%s", start);
            return buf;
        }
    }
    snprintf(buf, size, "%s", last + 1);
    return buf;
}

void tb_mx_value_text(const cJSON *v, char *buf, size_t size)
{
    if (cJSON_IsString(v))
        snprintf(buf, size, "%s", v->valuestring);
    else if (cJSON_IsNumber(v))
        tb_json_format_number(v->valuedouble, buf, size);
    else
        tb_json_preview(v, buf, size);
}

void tb_mx_set_label(const cJSON *set, const char *prefix, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "%s", prefix);
    for (const cJSON *k = set->child; k && used < size; k = k->next) {
        char short_key[128], val[96];
        tb_mx_short_key(k->string, short_key, sizeof short_key);
        const char *sep = k == set->child ? "" : ", ";
        if (cJSON_IsBool(k))
            used += (size_t)snprintf(buf + used, size - used, "%s%s%s", sep, cJSON_IsTrue(k) ? "" : "no ", short_key);
        else {
            tb_mx_value_text(k, val, sizeof val);
            used += (size_t)snprintf(buf + used, size - used, "%s%s=%s", sep, short_key, val);
        }
    }
}

void tb_mx_label_hint(const tb_matrix *m, const char *name, char *buf, size_t size)
{
    buf[0] = '\0';
    const char **labels = malloc((size_t)(m->n_rows > 0 ? m->n_rows : 1) * sizeof *labels);
    if (!labels)
        return;
    for (int i = 0; i < m->n_rows; i++)
        labels[i] = m->rows[i].label;
    const char *near = tb_nearest_name(name, labels, (size_t)m->n_rows);
    if (near)
        snprintf(buf, size, " (did you mean '%s'?)", near);
    free(labels);
}

int tb_mx_apply_set(tb_run_config *cfg, const cJSON *set, const char *origin)
{
    const char *dup = tb_json_duplicate_key(set);
    if (dup)
        return tb_fail(TB_ERR_INVALID, "%s: key '%s' is given twice", origin, dup);
    for (const cJSON *k = set->child; k; k = k->next) {
        if (!strcmp(k->string, "seed"))
            return tb_fail(TB_ERR_INVALID, "%s: seed: vary the seed with the matrix's \"seeds\"", origin);
        TB_TRY(tb_config_set(cfg, k->string, k, origin));
    }
    return TB_OK;
}

/* ---- rows ---------------------------------------------------------------- */

static int add_dim(tb_matrix *m, const char *name, int n, char *const *labels)
{
    tb_matrix_dim *d = &m->dims[m->n_dims];
    snprintf(d->name, sizeof d->name, "%s", name);
    d->levels = calloc((size_t)n, sizeof *d->levels);
    if (!d->levels)
        return tb_fail(TB_ERR_NOMEM, "out of memory building the matrix");
    m->n_dims++;
    for (int i = 0; i < n; i++) {
        d->levels[i] = strdup(labels[i]);
        if (!d->levels[i])
            return tb_fail(TB_ERR_NOMEM, "out of memory building the matrix");
        d->n_levels = i + 1;
    }
    return TB_OK;
}

static int build_dims(const tb_mx_spec *s, tb_matrix *m)
{
    m->dims = calloc((size_t)s->n_axes + 1, sizeof *m->dims);
    if (!m->dims)
        return tb_fail(TB_ERR_NOMEM, "out of memory building the matrix");
    for (int a = 0; a < s->n_axes; a++)
        TB_TRY(add_dim(m, s->axes[a].key, s->axes[a].n, s->axes[a].labels));
    if (s->mode != TB_MX_PLAIN) {
        char **labels = calloc((size_t)s->n_levels, sizeof *labels);
        if (!labels)
            return tb_fail(TB_ERR_NOMEM, "out of memory building the matrix");
        for (int i = 0; i < s->n_levels; i++)
            labels[i] = (char *)s->levels[i].label;
        int rc = add_dim(m, s->mode == TB_MX_STEPS ? "steps" : "rows", s->n_levels, labels);
        free(labels);
        TB_TRY(rc);
    }
    return TB_OK;
}

/* Whether the resolved config of a row has the value `want` at `key`. */
static int value_matches(const tb_run_config *cfg, const char *key, const cJSON *want, const char *origin, bool *match)
{
    tb_run_config probe = *cfg;
    TB_TRY(tb_config_set(&probe, key, want, origin)); /* normalises the value: 0.25 vs 0.250, "A" vs 'A' */
    cJSON *have = NULL, *wanted = NULL;
    int rc = tb_config_get(cfg, key, &have);
    if (rc == TB_OK)
        rc = tb_config_get(&probe, key, &wanted);
    if (rc == TB_OK) {
        char *a = tb_json_canonical(have), *b = tb_json_canonical(wanted);
        if (!a || !b)
            rc = tb_fail(TB_ERR_NOMEM, "out of memory comparing %s", key);
        else
            *match = !strcmp(a, b);
        free(a);
        free(b);
    }
    cJSON_Delete(have);
    cJSON_Delete(wanted);
    return rc;
}

static int excluded(const tb_mx_spec *s, const char *label, const tb_run_config *cfg, int *hits, bool *out)
{
    *out = false;
    int i = 0;
    for (const cJSON *e = s->exclude ? s->exclude->child : NULL; e; e = e->next, i++) {
        char where[TB_ORIGIN_MAX];
        tb_mx_where(where, sizeof where, "%s: exclude[%d]", s->origin, i);
        bool all = true;
        for (const cJSON *k = e->child; k && all; k = k->next) {
            if (!strcmp(k->string, "label")) {
                all = cJSON_IsString(k) && !strcmp(k->valuestring, label);
                continue;
            }
            bool match = false;
            TB_TRY(value_matches(cfg, k->string, k, where, &match));
            all = match;
        }
        if (all) {
            hits[i]++;
            *out = true;
        }
    }
    return TB_OK;
}

static int check_exclude_shape(const tb_mx_spec *s)
{
    if (!s->exclude)
        return TB_OK;
    if (!cJSON_IsArray(s->exclude))
        return tb_fail(TB_ERR_INVALID, "%s: exclude: expected an array of {key: value} objects, got %s", s->origin,
                       tb_json_type_name(s->exclude));
    int i = 0;
    for (const cJSON *e = s->exclude->child; e; e = e->next, i++) {
        if (!cJSON_IsObject(e) || !e->child)
            return tb_fail(TB_ERR_INVALID, "%s: exclude[%d]: expected a non-empty object {key path: value}",
                           s->origin, i);
        const char *dup = tb_json_duplicate_key(e);
        if (dup)
            return tb_fail(TB_ERR_INVALID, "%s: exclude[%d]: key '%s' is given twice", s->origin, i, dup);
        for (const cJSON *k = e->child; k; k = k->next) {
            if (!strcmp(k->string, "label")) {
                if (!cJSON_IsString(k))
                    return tb_fail(TB_ERR_INVALID, "%s: exclude[%d].label: expected a string", s->origin, i);
                continue;
            }
            char where[TB_ORIGIN_MAX];
            tb_mx_where(where, sizeof where, "%s: exclude[%d]", s->origin, i);
            tb_run_config probe = s->base;
            TB_TRY(tb_config_set(&probe, k->string, k, where));
        }
    }
    return TB_OK;
}

static int add_row(tb_matrix *m, int cap, const char *label, const int *levels, int n_dims, const tb_run_config *cfg)
{
    if (m->n_rows >= cap)
        return tb_fail(TB_ERR_INTERNAL, "matrix row capacity exceeded");
    for (int i = 0; i < m->n_rows; i++)
        if (!strcmp(m->rows[i].label, label))
            return tb_fail(TB_ERR_INVALID, "two rows of the matrix have the label '%s'", label);
    tb_matrix_row *r = &m->rows[m->n_rows];
    snprintf(r->label, sizeof r->label, "%s", label);
    r->cfg = *cfg;
    r->levels = NULL;
    if (levels) {
        r->levels = malloc((size_t)(n_dims > 0 ? n_dims : 1) * sizeof *r->levels);
        if (!r->levels)
            return tb_fail(TB_ERR_NOMEM, "out of memory building the matrix");
        memcpy(r->levels, levels, (size_t)n_dims * sizeof *levels);
    }
    m->n_rows++;
    return TB_OK;
}

/* The config and label of grid cell `idx` (axes slowest-first, then the level). */
static int grid_cell(const tb_mx_spec *s, const tb_matrix *m, long idx, int *levels, tb_run_config *cfg,
                     char *label, size_t size)
{
    *cfg = s->base;
    long rest = idx;
    int n_levels = s->mode == TB_MX_PLAIN ? 1 : s->n_levels;
    int level = (int)(rest % n_levels);
    rest /= n_levels;
    for (int a = s->n_axes - 1; a >= 0; a--) {
        levels[a] = (int)(rest % s->axes[a].n);
        rest /= s->axes[a].n;
    }
    size_t used = 0;
    label[0] = '\0';
    for (int a = 0; a < s->n_axes; a++) {
        char where[TB_ORIGIN_MAX + 32];
        tb_mx_where(where, sizeof where, "%s.values[%d]", s->axes[a].origin, levels[a]);
        TB_TRY(tb_config_set(cfg, s->axes[a].key, cJSON_GetArrayItem(s->axes[a].values, levels[a]), where));
        used += (size_t)snprintf(label + used, used < size ? size - used : 0, "%s%s", a ? ", " : "",
                                 s->axes[a].labels[levels[a]]);
    }
    if (s->mode != TB_MX_PLAIN) {
        levels[s->n_axes] = level;
        int from = s->mode == TB_MX_STEPS ? 0 : level;
        for (int j = from; j <= level; j++)
            if (s->levels[j].set)
                TB_TRY(tb_mx_apply_set(cfg, s->levels[j].set, s->levels[j].origin));
        used += (size_t)snprintf(label + used, used < size ? size - used : 0, "%s%s", s->n_axes ? ", " : "",
                                 s->levels[level].label);
    } else if (s->n_axes == 0) {
        snprintf(label, size, "baseline");
    }
    if (used >= size)
        return tb_fail(TB_ERR_INVALID, "%s: the generated label '%.60s...' is too long; give shorter labels",
                       s->origin, label);
    (void)m;
    return TB_OK;
}

static int add_includes(const tb_mx_spec *s, tb_matrix *m, int cap)
{
    if (!s->include)
        return TB_OK;
    if (!cJSON_IsArray(s->include))
        return tb_fail(TB_ERR_INVALID, "%s: include: expected an array of {\"label\", \"set\"}, got %s", s->origin,
                       tb_json_type_name(s->include));
    int i = 0;
    for (const cJSON *e = s->include->child; e; e = e->next, i++) {
        char where[TB_ORIGIN_MAX];
        tb_mx_where(where, sizeof where, "%s: include[%d]", s->origin, i);
        if (!cJSON_IsObject(e))
            return tb_fail(TB_ERR_INVALID, "%s: expected an object {\"label\", \"set\"}", where);
        for (const cJSON *k = e->child; k; k = k->next)
            if (strcmp(k->string, "label") && strcmp(k->string, "set"))
                return tb_fail(TB_ERR_INVALID, "%s: unknown key '%s' (an include entry has label and set)", where,
                               k->string);
        const cJSON *set = cJSON_GetObjectItemCaseSensitive(e, "set");
        const cJSON *lab = cJSON_GetObjectItemCaseSensitive(e, "label");
        if (!cJSON_IsObject(set) || !set->child)
            return tb_fail(TB_ERR_INVALID, "%s: set: expected a non-empty object of key paths and values", where);
        if (lab && (!cJSON_IsString(lab) || !lab->valuestring[0] || strlen(lab->valuestring) >= TB_LABEL_MAX))
            return tb_fail(TB_ERR_INVALID, "%s: label: expected a non-empty string", where);
        char label[TB_LABEL_MAX];
        if (lab)
            snprintf(label, sizeof label, "%s", lab->valuestring);
        else
            tb_mx_set_label(set, "", label, sizeof label);
        char set_where[TB_ORIGIN_MAX + 8];
        tb_mx_where(set_where, sizeof set_where, "%s.set", where);
        tb_run_config cfg = s->base;
        TB_TRY(tb_mx_apply_set(&cfg, set, set_where));
        TB_TRY(tb_err_context(add_row(m, cap, label, NULL, 0, &cfg), "%s", where));
    }
    return TB_OK;
}

int tb_mx_build_rows(const tb_mx_spec *s, tb_matrix *m)
{
    TB_TRY(check_exclude_shape(s));
    TB_TRY(build_dims(s, m));
    long cells = s->mode == TB_MX_PLAIN ? 1 : s->n_levels;
    for (int a = 0; a < s->n_axes; a++) {
        cells *= s->axes[a].n;
        if (cells > 100000)
            return tb_fail(TB_ERR_INVALID, "%s: the grid has more than 100000 rows; split the matrix", s->origin);
    }
    int n_include = s->include && cJSON_IsArray(s->include) ? cJSON_GetArraySize(s->include) : 0;
    int cap = (int)cells + n_include;
    m->rows = calloc((size_t)cap, sizeof *m->rows);
    int n_excl = s->exclude ? cJSON_GetArraySize(s->exclude) : 0;
    int *hits = calloc((size_t)(n_excl > 0 ? n_excl : 1), sizeof *hits);
    int *levels = calloc((size_t)m->n_dims + 1, sizeof *levels);
    tb_run_config *cfg = malloc(sizeof *cfg);
    int rc = m->rows && hits && levels && cfg ? TB_OK : tb_fail(TB_ERR_NOMEM, "out of memory expanding the matrix");
    for (long idx = 0; rc == TB_OK && idx < cells; idx++) {
        char label[TB_LABEL_MAX];
        bool drop = false;
        rc = grid_cell(s, m, idx, levels, cfg, label, sizeof label);
        if (rc == TB_OK)
            rc = excluded(s, label, cfg, hits, &drop);
        if (rc == TB_OK && !drop)
            rc = tb_err_context(add_row(m, cap, label, levels, m->n_dims, cfg), "%s", s->origin);
    }
    for (int i = 0; rc == TB_OK && i < n_excl; i++)
        if (!hits[i])
            rc = tb_fail(TB_ERR_INVALID, "%s: exclude[%d] matches no row of the grid", s->origin, i);
    if (rc == TB_OK)
        rc = add_includes(s, m, cap);
    if (rc == TB_OK && m->n_rows == 0)
        rc = tb_fail(TB_ERR_INVALID, "%s: every row is excluded; nothing to run", s->origin);
    for (int r = 0; rc == TB_OK && r < m->n_rows; r++) {
        char where[TB_ORIGIN_MAX];
        tb_mx_where(where, sizeof where, "%s: row '%s'", s->origin, m->rows[r].label);
        rc = tb_config_validate(&m->rows[r].cfg, where);
    }
    free(hits);
    free(levels);
    free(cfg);
    return rc;
}

/* ---- runs ---------------------------------------------------------------- */

static int find_label(const tb_matrix *m, const char *label)
{
    for (int i = 0; i < m->n_rows; i++)
        if (!strcmp(m->rows[i].label, label))
            return i;
    return -1;
}

/* Depth-first: a row is placed after the teacher it distils from. */
static int visit(const tb_matrix *m, const int *teacher, int r, char *state, int *order, int *n, const char *origin)
{
    if (state[r] == 2)
        return TB_OK;
    if (state[r] == 1)
        return tb_fail(TB_ERR_INVALID, "%s: row '%s': distillation teachers form a cycle", origin, m->rows[r].label);
    state[r] = 1;
    if (teacher[r] >= 0)
        TB_TRY(visit(m, teacher, teacher[r], state, order, n, origin));
    state[r] = 2;
    order[(*n)++] = r;
    return TB_OK;
}

static int row_order(const tb_mx_spec *s, const tb_matrix *m, int *order, int *teacher)
{
    for (int r = 0; r < m->n_rows; r++) {
        teacher[r] = -1;
        const tb_distill_config *d = &m->rows[r].cfg.tricks.distill;
        if (!d->enabled || !d->teacher[0])
            continue;
        teacher[r] = find_label(m, d->teacher);
        if (teacher[r] < 0) {
            char hint[TB_LABEL_MAX + 32];
            tb_mx_label_hint(m, d->teacher, hint, sizeof hint);
            return tb_fail(TB_ERR_INVALID, "%s: row '%s': tricks.distill.teacher: no row is labelled '%s'%s",
                           s->origin, m->rows[r].label, d->teacher, hint);
        }
        if (teacher[r] == r)
            return tb_fail(TB_ERR_INVALID, "%s: row '%s': tricks.distill.teacher names the row itself", s->origin,
                           m->rows[r].label);
    }
    char *state = calloc((size_t)m->n_rows, 1);
    if (!state)
        return tb_fail(TB_ERR_NOMEM, "out of memory ordering the matrix");
    int n = 0, rc = TB_OK;
    /* teachers' subtrees first, then everything else in matrix order */
    for (int r = 0; rc == TB_OK && r < m->n_rows; r++)
        for (int q = 0; rc == TB_OK && q < m->n_rows; q++)
            if (teacher[q] == r)
                rc = visit(m, teacher, r, state, order, &n, s->origin);
    for (int r = 0; rc == TB_OK && r < m->n_rows; r++)
        rc = visit(m, teacher, r, state, order, &n, s->origin);
    free(state);
    return rc;
}

int tb_mx_build_runs(const tb_mx_spec *s, tb_matrix *m)
{
    int *order = calloc((size_t)m->n_rows, sizeof *order);
    int *teacher = calloc((size_t)m->n_rows, sizeof *teacher);
    int *first_run = calloc((size_t)m->n_rows, sizeof *first_run); /* run index of (row, seed 0) */
    m->runs = calloc((size_t)m->n_rows * (size_t)m->n_seeds, sizeof *m->runs);
    int rc = order && teacher && first_run && m->runs ? TB_OK : tb_fail(TB_ERR_NOMEM, "out of memory expanding runs");
    if (rc == TB_OK)
        rc = row_order(s, m, order, teacher);
    for (int k = 0; rc == TB_OK && k < m->n_rows; k++) {
        int r = order[k];
        first_run[r] = m->n_runs;
        for (int j = 0; rc == TB_OK && j < m->n_seeds; j++) {
            tb_matrix_run *run = &m->runs[m->n_runs];
            run->row = r;
            run->seed = m->seeds[j];
            run->cfg = m->rows[r].cfg;
            run->cfg.seed = m->seeds[j];
            run->teacher = teacher[r] >= 0 ? first_run[teacher[r]] + j : -1;
            run->shard_key = run->teacher >= 0 ? m->runs[run->teacher].shard_key : m->n_runs;
            run->config_json = tb_config_canonical_json(&run->cfg);
            if (!run->config_json) {
                rc = tb_fail(TB_ERR_NOMEM, "out of memory expanding runs");
                break;
            }
            tb_sha256_hex(run->config_json, strlen(run->config_json), run->hash);
            m->n_runs++;
            for (int i = 0; i < m->n_runs - 1; i++) {
                if (!strcmp(m->runs[i].hash, run->hash)) {
                    rc = tb_fail(TB_ERR_INVALID,
                                 "%s: rows '%s' and '%s' resolve to the same config (seed %llu); "
                                 "does a step or axis value repeat the base? exclude one of them",
                                 s->origin, m->rows[m->runs[i].row].label, m->rows[r].label,
                                 (unsigned long long)run->seed);
                    break;
                }
            }
        }
    }
    free(order);
    free(teacher);
    free(first_run);
    return rc;
}
