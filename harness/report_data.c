/* Reports, part 1: reading a matrix's runs, metrics and epochs from the
 * store and computing per-row statistics (mean ± std, Δ, Welch p). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/json_util.h"
#include "harness/report_internal.h"
#include "harness/stats.h"
#include "harness/store_internal.h"
#include "kernels/error.h"

/* Metrics that describe the run rather than its quality: never defaults. */
static bool is_meta_metric(const char *name)
{
    static const char *const meta[] = {"epoch_seconds_median", "images_per_sec_median", "skipped_steps", "params",
                                       "macs"};
    for (size_t i = 0; i < sizeof meta / sizeof meta[0]; i++)
        if (!strcmp(name, meta[i]))
            return true;
    return false;
}

static int push_double(double **v, int *n, int *cap, double x)
{
    if (!isfinite(x))
        return TB_OK;
    if (*n == *cap) {
        int c = *cap ? *cap * 2 : 16;
        double *p = realloc(*v, (size_t)c * sizeof *p);
        if (!p)
            return tb_fail(TB_ERR_NOMEM, "out of memory reading epochs");
        *v = p;
        *cap = c;
    }
    (*v)[(*n)++] = x;
    return TB_OK;
}

static int push_value(rp_row *r, const char *name, double v)
{
    if (r->n_vals == r->cap_vals) {
        int c = r->cap_vals ? r->cap_vals * 2 : 16;
        rp_value *p = realloc(r->vals, (size_t)c * sizeof *p);
        if (!p)
            return tb_fail(TB_ERR_NOMEM, "out of memory reading metrics");
        r->vals = p;
        r->cap_vals = c;
    }
    snprintf(r->vals[r->n_vals].name, sizeof r->vals[0].name, "%s", name);
    r->vals[r->n_vals++].value = v;
    return TB_OK;
}

int rp_row_values(const rp_row *r, const char *metric, double **out)
{
    *out = malloc((size_t)(r->n_vals > 0 ? r->n_vals : 1) * sizeof **out);
    if (!*out)
        return 0;
    int n = 0;
    for (int i = 0; i < r->n_vals; i++)
        if (!strcmp(r->vals[i].name, metric) && isfinite(r->vals[i].value))
            (*out)[n++] = r->vals[i].value;
    return n;
}

static int load_run_data(tb_store *st, int64_t run_id, rp_row *r)
{
    sqlite3_stmt *q;
    TB_TRY(tb_store_prepare(st, "SELECT name, value FROM metrics WHERE run_id = ?1 ORDER BY name", &q,
                            "reading metrics"));
    sqlite3_bind_int64(q, 1, run_id);
    int s, rc = TB_OK;
    while (rc == TB_OK && (s = sqlite3_step(q)) == SQLITE_ROW)
        rc = push_value(r, (const char *)sqlite3_column_text(q, 0),
                        sqlite3_column_type(q, 1) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 1));
    sqlite3_finalize(q);
    TB_TRY(rc);
    TB_TRY(tb_store_prepare(st, "SELECT seconds, images_per_sec FROM epochs WHERE run_id = ?1 ORDER BY epoch", &q,
                            "reading epochs"));
    sqlite3_bind_int64(q, 1, run_id);
    while (rc == TB_OK && (s = sqlite3_step(q)) == SQLITE_ROW) {
        if (sqlite3_column_type(q, 0) != SQLITE_NULL)
            rc = push_double(&r->secs, &r->n_secs, &r->cap_secs, sqlite3_column_double(q, 0));
        if (rc == TB_OK && sqlite3_column_type(q, 1) != SQLITE_NULL)
            rc = push_double(&r->ips, &r->n_ips, &r->cap_ips, sqlite3_column_double(q, 1));
    }
    sqlite3_finalize(q);
    return rc;
}

static rp_row *find_or_add_row(rp_matrix *m, const char *label, int row, const char *parts, int *cap)
{
    for (int i = 0; i < m->n_rows; i++)
        if (!strcmp(m->rows[i].label, label))
            return &m->rows[i];
    if (m->n_rows == *cap) {
        int c = *cap ? *cap * 2 : 16;
        rp_row *p = realloc(m->rows, (size_t)c * sizeof *p);
        if (!p)
            return NULL;
        m->rows = p;
        *cap = c;
    }
    rp_row *r = &m->rows[m->n_rows];
    memset(r, 0, sizeof *r);
    snprintf(r->label, sizeof r->label, "%s", label);
    r->row = row;
    r->parts = cJSON_Parse(parts);
    if (!r->parts)
        return NULL;
    m->n_rows++;
    return r;
}

static int note_unfinished(rp_matrix *m, const char *label, uint64_t seed, const char *status, const char *error)
{
    rp_unfinished *p = realloc(m->unfinished, (size_t)(m->n_unfinished + 1) * sizeof *p);
    if (!p)
        return tb_fail(TB_ERR_NOMEM, "out of memory");
    m->unfinished = p;
    rp_unfinished *u = &p[m->n_unfinished++];
    snprintf(u->label, sizeof u->label, "%s", label);
    u->seed = seed;
    snprintf(u->status, sizeof u->status, "%s", status);
    snprintf(u->error, sizeof u->error, "%s", error ? error : "");
    return TB_OK;
}

static int load_rows(tb_store *st, rp_matrix *m)
{
    sqlite3_stmt *q;
    TB_TRY(tb_store_prepare(st,
                            "SELECT mr.label, mr.row, mr.parts, mr.seed, r.status, r.id, coalesce(r.error, '') "
                            "FROM matrix_runs mr JOIN runs r ON r.id = mr.run_id WHERE mr.matrix_id = ?1 "
                            "ORDER BY mr.row, mr.seed",
                            &q, "reading runs"));
    sqlite3_bind_int64(q, 1, m->id);
    int s, rc = TB_OK, cap = 0;
    while (rc == TB_OK && (s = sqlite3_step(q)) == SQLITE_ROW) {
        const char *label = (const char *)sqlite3_column_text(q, 0);
        const char *status = (const char *)sqlite3_column_text(q, 4);
        rp_row *r = find_or_add_row(m, label, sqlite3_column_int(q, 1), (const char *)sqlite3_column_text(q, 2), &cap);
        if (!r) {
            rc = tb_fail(TB_ERR_NOMEM, "out of memory reading runs");
            break;
        }
        r->runs++;
        m->n_runs++;
        if (!strcmp(status, "finished")) {
            r->finished++;
            rc = load_run_data(st, sqlite3_column_int64(q, 5), r);
            continue;
        }
        if (!strcmp(status, "failed"))
            r->failed++;
        else if (!strcmp(status, "diverged"))
            r->diverged++;
        else
            r->pending++;
        rc = note_unfinished(m, label, (uint64_t)sqlite3_column_int64(q, 3), status,
                             (const char *)sqlite3_column_text(q, 6));
    }
    sqlite3_finalize(q);
    return rc;
}

static bool has_name(char **names, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], name))
            return true;
    return false;
}

static int add_name(char ***names, int *n, const char *name)
{
    char **p = realloc(*names, (size_t)(*n + 1) * sizeof *p);
    if (!p)
        return tb_fail(TB_ERR_NOMEM, "out of memory");
    *names = p;
    if (!(p[*n] = strdup(name)))
        return tb_fail(TB_ERR_NOMEM, "out of memory");
    (*n)++;
    return TB_OK;
}

static int select_metrics(rp_matrix *m, const char *wanted)
{
    for (int r = 0; r < m->n_rows; r++)
        for (int i = 0; i < m->rows[r].n_vals; i++)
            if (!has_name(m->available, m->n_available, m->rows[r].vals[i].name))
                TB_TRY(add_name(&m->available, &m->n_available, m->rows[r].vals[i].name));
    if (wanted) {
        char *copy = strdup(wanted);
        if (!copy)
            return tb_fail(TB_ERR_NOMEM, "out of memory");
        int rc = TB_OK;
        for (char *save = NULL, *tok = strtok_r(copy, ", ", &save); rc == TB_OK && tok;
             tok = strtok_r(NULL, ", ", &save)) {
            if (!has_name(m->available, m->n_available, tok) && m->n_available > 0) {
                const char *near = tb_nearest_name(tok, (const char *const *)m->available, (size_t)m->n_available);
                char list[512] = "";
                for (int i = 0, used = 0; i < m->n_available && used < (int)sizeof list; i++)
                    used += snprintf(list + used, sizeof list - (size_t)used, "%s%s", i ? ", " : "", m->available[i]);
                rc = near ? tb_fail(TB_ERR_USAGE, "--metrics: matrix '%s' has no metric '%s' (did you mean '%s'?)",
                                    m->name, tok, near)
                          : tb_fail(TB_ERR_USAGE, "--metrics: matrix '%s' has no metric '%s'; it has: %s", m->name,
                                    tok, list);
            } else if (!has_name(m->metrics, m->n_metrics, tok)) {
                rc = add_name(&m->metrics, &m->n_metrics, tok);
            }
        }
        free(copy);
        return rc;
    }
    static const char *const preferred[] = {"top1", "top5", "mAP", "mAP_area", "pixacc", "miou"};
    for (size_t i = 0; i < sizeof preferred / sizeof preferred[0]; i++)
        if (has_name(m->available, m->n_available, preferred[i]))
            TB_TRY(add_name(&m->metrics, &m->n_metrics, preferred[i]));
    for (int i = 0; m->n_metrics == 0 && i < m->n_available; i++)
        if (!is_meta_metric(m->available[i]))
            TB_TRY(add_name(&m->metrics, &m->n_metrics, m->available[i]));
    return TB_OK;
}

static const rp_row *row_by_label(const rp_matrix *m, const char *label)
{
    for (int i = 0; i < m->n_rows; i++)
        if (!strcmp(m->rows[i].label, label))
            return &m->rows[i];
    return NULL;
}

static int check_baseline(rp_matrix *m, const char *wanted)
{
    if (!wanted)
        return TB_OK;
    if (!row_by_label(m, wanted)) {
        const char **labels = malloc((size_t)(m->n_rows > 0 ? m->n_rows : 1) * sizeof *labels);
        if (!labels)
            return tb_fail(TB_ERR_NOMEM, "out of memory");
        for (int i = 0; i < m->n_rows; i++)
            labels[i] = m->rows[i].label;
        const char *near = tb_nearest_name(wanted, labels, (size_t)m->n_rows);
        int rc = tb_fail(TB_ERR_USAGE, "--baseline: matrix '%s' has no row '%s'%s%s%s", m->name, wanted,
                         near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
        free(labels);
        return rc;
    }
    snprintf(m->baseline, sizeof m->baseline, "%s", wanted);
    return TB_OK;
}

/* Statistics of one row for one metric, Δ and p against the baseline row. */
static void row_stats(const rp_matrix *m, rp_row *r, int k, const rp_row *base)
{
    rp_stats *s = &r->stats[k];
    double *v = NULL, *b = NULL;
    s->n = rp_row_values(r, m->metrics[k], &v);
    s->mean = tb_stats_mean(v, s->n);
    s->std = tb_stats_std(v, s->n);
    s->delta = s->p = NAN;
    if (base && base != r) {
        int nb = rp_row_values(base, m->metrics[k], &b);
        if (nb > 0 && s->n > 0)
            s->delta = s->mean - tb_stats_mean(b, nb);
        tb_welch w;
        double sb = tb_stats_std(b, nb);
        if (tb_stats_welch(s->mean, s->std * s->std, s->n, tb_stats_mean(b, nb), sb * sb, nb, &w))
            s->p = w.p;
    }
    s->ref = NAN;
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m->reference, r->label),
                                                         m->metrics[k]);
    if (cJSON_IsNumber(ref))
        s->ref = ref->valuedouble;
    free(v);
    free(b);
}

int rp_load_matrix(tb_store *st, int64_t id, const tb_report_options *opt, rp_matrix *m)
{
    memset(m, 0, sizeof *m);
    m->id = id;
    sqlite3_stmt *q;
    TB_TRY(tb_store_prepare(st, "SELECT name, description, baseline, dims, reference FROM matrices WHERE id = ?1", &q,
                            "reading a matrix"));
    sqlite3_bind_int64(q, 1, id);
    int s = sqlite3_step(q);
    if (s == SQLITE_ROW) {
        snprintf(m->name, sizeof m->name, "%s", (const char *)sqlite3_column_text(q, 0));
        m->description = strdup((const char *)sqlite3_column_text(q, 1));
        snprintf(m->baseline, sizeof m->baseline, "%s", (const char *)sqlite3_column_text(q, 2));
        m->dims = cJSON_Parse((const char *)sqlite3_column_text(q, 3));
        m->reference = cJSON_Parse((const char *)sqlite3_column_text(q, 4));
    }
    sqlite3_finalize(q);
    if (s != SQLITE_ROW)
        return tb_store_error(st, s, "reading a matrix");
    if (!m->description || !m->dims || !m->reference)
        return tb_fail(TB_ERR_DATA, "%s: matrix '%s' has malformed JSON columns", tb_store_path(st), m->name);
    TB_TRY(load_rows(st, m));
    TB_TRY(select_metrics(m, opt->metrics));
    TB_TRY(check_baseline(m, opt->baseline));
    const rp_row *base = row_by_label(m, m->baseline);
    for (int i = 0; i < m->n_rows; i++) {
        rp_row *r = &m->rows[i];
        r->stats = calloc((size_t)(m->n_metrics > 0 ? m->n_metrics : 1), sizeof *r->stats);
        if (!r->stats)
            return tb_fail(TB_ERR_NOMEM, "out of memory");
        for (int k = 0; k < m->n_metrics; k++)
            row_stats(m, r, k, base);
        r->sec_median = tb_stats_median(r->secs, r->n_secs);
        r->ips_median = tb_stats_median(r->ips, r->n_ips);
    }
    return rp_compute_effects(m);
}

void rp_free_matrix(rp_matrix *m)
{
    for (int i = 0; i < m->n_rows; i++) {
        rp_row *r = &m->rows[i];
        cJSON_Delete(r->parts);
        free(r->vals);
        free(r->secs);
        free(r->ips);
        free(r->stats);
    }
    free(m->rows);
    for (int i = 0; i < m->n_metrics; i++)
        free(m->metrics[i]);
    free(m->metrics);
    for (int i = 0; i < m->n_available; i++)
        free(m->available[i]);
    free(m->available);
    for (int k = 0; m->effects && k < m->n_metrics; k++)
        free(m->effects[k]);
    free(m->effects);
    free(m->n_effects);
    free(m->unfinished);
    free(m->description);
    cJSON_Delete(m->dims);
    cJSON_Delete(m->reference);
    memset(m, 0, sizeof *m);
}

static int matrix_ids(tb_store *st, const char *name, int64_t **ids, int *n)
{
    *ids = NULL;
    *n = 0;
    sqlite3_stmt *q;
    TB_TRY(tb_store_prepare(st, "SELECT id, name FROM matrices ORDER BY name", &q, "listing matrices"));
    int s, rc = TB_OK, total = 0;
    const char *names[256];
    char *owned[256];
    while (rc == TB_OK && (s = sqlite3_step(q)) == SQLITE_ROW) {
        const char *mn = (const char *)sqlite3_column_text(q, 1);
        if (total < 256 && (owned[total] = strdup(mn)))
            names[total] = owned[total], total++;
        if (name && strcmp(name, mn))
            continue;
        int64_t *p = realloc(*ids, (size_t)(*n + 1) * sizeof *p);
        if (!p) {
            rc = tb_fail(TB_ERR_NOMEM, "out of memory");
            break;
        }
        *ids = p;
        p[(*n)++] = sqlite3_column_int64(q, 0);
    }
    sqlite3_finalize(q);
    if (rc == TB_OK && *n == 0) {
        if (!name)
            rc = tb_fail(TB_ERR_MISSING, "%s: no matrix recorded yet; run 'trickbench run MATRIX' first",
                         tb_store_path(st));
        else {
            const char *near = tb_nearest_name(name, names, (size_t)total);
            rc = tb_fail(TB_ERR_USAGE, "--matrix: %s has no matrix '%s'%s%s%s", tb_store_path(st), name,
                         near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
        }
    }
    for (int i = 0; i < total; i++)
        free(owned[i]);
    return rc;
}

int tb_report_print(tb_store *st, const tb_report_options *opt, FILE *out)
{
    int64_t *ids;
    int n;
    TB_TRY(matrix_ids(st, opt->matrix, &ids, &n));
    cJSON *json = opt->format == TB_FORMAT_JSON ? cJSON_CreateObject() : NULL;
    cJSON *list = json ? cJSON_AddArrayToObject(json, "matrices") : NULL;
    int rc = opt->format != TB_FORMAT_JSON || list ? TB_OK : tb_fail(TB_ERR_NOMEM, "out of memory");
    for (int i = 0; rc == TB_OK && i < n; i++) {
        rp_matrix m;
        rc = rp_load_matrix(st, ids[i], opt, &m);
        if (rc == TB_OK) {
            if (opt->format == TB_FORMAT_MD) {
                if (i)
                    fputc('\n', out);
                rc = rp_print_md(&m, opt, out);
            } else if (opt->format == TB_FORMAT_CSV) {
                rc = rp_print_csv(&m, i == 0, out);
            } else {
                cJSON *mj = rp_to_json(&m);
                if (!mj)
                    rc = tb_fail(TB_ERR_NOMEM, "out of memory");
                else
                    cJSON_AddItemToArray(list, mj);
            }
        }
        rp_free_matrix(&m);
    }
    if (rc == TB_OK && json) {
        char *text = cJSON_Print(json);
        if (!text)
            rc = tb_fail(TB_ERR_NOMEM, "out of memory");
        else
            fprintf(out, "%s\n", text);
        free(text);
    }
    cJSON_Delete(json);
    free(ids);
    return rc;
}
