/* Reports, part 3: markdown (plain and pivoted), CSV and JSON output. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/json_util.h"
#include "harness/report_internal.h"
#include "harness/strbuf.h"
#include "harness/table.h"
#include "kernels/error.h"

#define DASH "—"

/* snprintf that may cut a cell short (a huge value): fine for a table, and
 * keeps -Wformat-truncation quiet about it */
static void cell(char *buf, size_t size, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void cell(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

static bool is_percent(const char *metric)
{
    static const char *const pct[] = {"top1",       "top5", "val_top1", "val_top5",  "train_top1",  "top1_flip",
                                      "top5_flip", "mAP",  "mAP_area", "pixacc", "miou", "miou_present"};
    for (size_t i = 0; i < sizeof pct / sizeof pct[0]; i++)
        if (!strcmp(metric, pct[i]))
            return true;
    return !strncmp(metric, "AP_", 3) || !strncmp(metric, "IoU_", 4); /* per-class AP and IoU */
}

void rp_format_value(const char *metric, double v, bool sign, char *buf, size_t size)
{
    if (!isfinite(v)) {
        cell(buf, size, DASH);
        return;
    }
    const char *plus = sign && v >= 0 ? "+" : "";
    if (is_percent(metric))
        cell(buf, size, "%s%.2f", plus, v);
    else if (strstr(metric, "loss"))
        cell(buf, size, "%s%.4f", plus, v);
    else if ((!strcmp(metric, "params") || !strcmp(metric, "macs")) && fabs(v) >= 1e6)
        cell(buf, size, "%s%.2f%s", plus, fabs(v) >= 1e9 ? v / 1e9 : v / 1e6, fabs(v) >= 1e9 ? "G" : "M");
    else
        cell(buf, size, "%s%.4g", plus, v);
}

static void format_p(double p, char *buf, size_t size)
{
    if (!isfinite(p))
        cell(buf, size, DASH);
    else if (p < 0.001)
        cell(buf, size, "<0.001");
    else
        cell(buf, size, "%.3f", p);
}

static void format_mean_std(const char *metric, const rp_stats *s, char *buf, size_t size)
{
    char mean[32], std[32];
    if (s->n == 0) {
        cell(buf, size, DASH);
        return;
    }
    rp_format_value(metric, s->mean, false, mean, sizeof mean);
    if (s->n < 2 || !isfinite(s->std)) {
        cell(buf, size, "%s", mean);
        return;
    }
    rp_format_value(metric, s->std, false, std, sizeof std);
    cell(buf, size, "%s ± %s", mean, std);
}

static void format_seconds(double s, char *buf, size_t size)
{
    if (!isfinite(s))
        cell(buf, size, DASH);
    else
        cell(buf, size, s >= 10 ? "%.1f" : "%.2f", s);
}

static bool metric_has_ref(const rp_matrix *m, int k)
{
    for (int i = 0; i < m->n_rows; i++)
        if (isfinite(m->rows[i].stats[k].ref))
            return true;
    return false;
}

static void print_notes(const rp_matrix *m, FILE *out)
{
    fprintf(out, "\nmean ± sample std over seeds; n: finished runs; Δ: against \"%s\"; p: Welch's two-sided t-test "
                 "over seeds (" DASH " below 2 runs a side); s/epoch, img/s: medians over epochs.\n",
            m->baseline);
    if (m->n_unfinished == 0)
        return;
    fprintf(out, "\nNot finished (%d of %d runs):\n", m->n_unfinished, m->n_runs);
    int shown = m->n_unfinished < 10 ? m->n_unfinished : 10;
    for (int i = 0; i < shown; i++) {
        const rp_unfinished *u = &m->unfinished[i];
        fprintf(out, "- %s (seed %llu): %s%s%s\n", u->label, (unsigned long long)u->seed, u->status,
                u->error[0] ? ": " : "", u->error);
    }
    if (m->n_unfinished > shown)
        fprintf(out, "- ... and %d more\n", m->n_unfinished - shown);
}

static int print_effects(const rp_matrix *m, FILE *out)
{
    if (!m->effects) {
        if (m->effects_note[0])
            fprintf(out, "\nEffects: %s.\n", m->effects_note);
        return TB_OK;
    }
    for (int k = 0; k < m->n_metrics; k++) {
        fprintf(out, "\n### Effects on %s\n\n", m->metrics[k]);
        tb_table t;
        tb_table_init(&t);
        tb_table_add_column(&t, "Effect", false);
        tb_table_add_column(&t, "Estimate", true);
        tb_table_add_column(&t, "SE", true);
        tb_table_add_column(&t, "p", true);
        for (int i = 0; i < m->n_effects[k]; i++) {
            const rp_effect *e = &m->effects[k][i];
            char est[32], se[32], p[32];
            rp_format_value(m->metrics[k], e->estimate, true, est, sizeof est);
            rp_format_value(m->metrics[k], e->se, false, se, sizeof se);
            format_p(e->p, p, sizeof p);
            const char *cells[] = {e->name, est, se, p};
            tb_table_add_row(&t, cells);
        }
        int rc = tb_table_print_md(&t, out);
        tb_table_free(&t);
        TB_TRY(rc);
    }
    fprintf(out, "\nMain effect: mean over the other factors of (level − first level); A × B: the effect of A at "
                 "B's second level minus at its first (0 = the two add up). SE and p from the within-cell "
                 "variance over seeds, pooled (df = %d).\n",
            m->effects_df);
    return TB_OK;
}

static void add_cell(const char ***cells, int *n, const char *s) { (*cells)[(*n)++] = s; }

/* Says which convention a detection or segmentation metric follows. */
static void print_metric_notes(const rp_matrix *m, FILE *out)
{
    static const struct {
        const char *metric, *note;
    } notes[] = {
        {"top1_flip", "top1_flip: top-1 with flip test-time augmentation, recorded by trickbench eval (%)"},
        {"mAP", "mAP: PASCAL VOC07 11-point interpolated AP, averaged over the classes with ground truth (%)"},
        {"mAP_area", "mAP_area: VOC2010+ area under the precision envelope (%)"},
        {"miou", "miou: mean IoU over ALL classes, an absent class counting 0 (GluonCV, the paper) (%)"},
        {"miou_present", "miou_present: mean IoU over the classes present (mmsegmentation) (%)"},
        {"pixacc", "pixacc: correctly labelled pixels / labelled pixels (%)"},
        {"AP_", "AP_<class>: one class's VOC07 11-point AP (%)"},
        {"IoU_", "IoU_<class>: one class's IoU (%)"},
    };
    bool first = true;
    for (size_t i = 0; i < sizeof notes / sizeof notes[0]; i++) {
        bool prefix = notes[i].metric[strlen(notes[i].metric) - 1] == '_';
        for (int k = 0; k < m->n_metrics; k++) {
            const char *name = m->metrics[k];
            if (prefix ? strncmp(name, notes[i].metric, strlen(notes[i].metric)) : strcmp(name, notes[i].metric))
                continue;
            fprintf(out, "%s- %s\n", first ? "\n" : "", notes[i].note);
            first = false;
            break;
        }
    }
}

static int print_plain(const rp_matrix *m, FILE *out)
{
    tb_table t;
    tb_table_init(&t);
    tb_table_add_column(&t, "Configuration", false);
    tb_table_add_column(&t, "n", true);
    bool *ref = calloc((size_t)(m->n_metrics > 0 ? m->n_metrics : 1), sizeof *ref);
    if (!ref)
        return tb_fail(TB_ERR_NOMEM, "out of memory");
    for (int k = 0; k < m->n_metrics; k++) {
        char h[96];
        tb_table_add_column(&t, m->metrics[k], true);
        if ((ref[k] = metric_has_ref(m, k)))
            tb_table_add_column(&t, "ref", true);
        snprintf(h, sizeof h, "Δ %s", m->metrics[k]);
        tb_table_add_column(&t, h, true);
        tb_table_add_column(&t, "p", true);
    }
    tb_table_add_column(&t, "s/epoch", true);
    tb_table_add_column(&t, "img/s", true);
    /* per metric at most 4 cells of 48 bytes */
    char (*buf)[48] = calloc((size_t)(4 * m->n_metrics + 4), sizeof *buf);
    const char **cells = calloc((size_t)t.n_cols, sizeof *cells);
    int rc = buf && cells ? TB_OK : tb_fail(TB_ERR_NOMEM, "out of memory");
    for (int i = 0; rc == TB_OK && i < m->n_rows; i++) {
        const rp_row *r = &m->rows[i];
        int n = 0, b = 0;
        add_cell(&cells, &n, r->label);
        if (r->finished == r->runs)
            cell(buf[b], sizeof buf[b], "%d", r->finished);
        else
            cell(buf[b], sizeof buf[b], "%d/%d", r->finished, r->runs);
        add_cell(&cells, &n, buf[b++]);
        for (int k = 0; k < m->n_metrics; k++) {
            const rp_stats *s = &r->stats[k];
            format_mean_std(m->metrics[k], s, buf[b], sizeof buf[b]);
            add_cell(&cells, &n, buf[b++]);
            if (ref[k]) {
                rp_format_value(m->metrics[k], s->ref, false, buf[b], sizeof buf[b]);
                add_cell(&cells, &n, buf[b++]);
            }
            rp_format_value(m->metrics[k], s->delta, true, buf[b], sizeof buf[b]);
            add_cell(&cells, &n, buf[b++]);
            format_p(s->p, buf[b], sizeof buf[b]);
            add_cell(&cells, &n, buf[b++]);
        }
        format_seconds(r->sec_median, buf[b], sizeof buf[b]);
        add_cell(&cells, &n, buf[b++]);
        if (isfinite(r->ips_median))
            cell(buf[b], sizeof buf[b], "%.0f", r->ips_median);
        else
            cell(buf[b], sizeof buf[b], DASH);
        add_cell(&cells, &n, buf[b++]);
        tb_table_add_row(&t, cells);
    }
    if (rc == TB_OK)
        rc = tb_table_print_md(&t, out);
    if (rc == TB_OK)
        print_metric_notes(m, out);
    free(buf);
    free(cells);
    free(ref);
    tb_table_free(&t);
    return rc;
}

/* The label of a row without the pivot dimension's part. */
static void rest_label(const rp_matrix *m, const rp_row *r, const char *pivot, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (const cJSON *d = m->dims->child; d; d = d->next) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(d, "name");
        if (!cJSON_IsString(name) || !strcmp(name->valuestring, pivot))
            continue;
        const cJSON *part = cJSON_GetObjectItemCaseSensitive(r->parts, name->valuestring);
        if (cJSON_IsString(part) && used < size)
            used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? ", " : "", part->valuestring);
    }
    if (!buf[0])
        cell(buf, size, "(all)");
}

static const cJSON *find_dim(const rp_matrix *m, const char *pivot)
{
    for (const cJSON *d = m->dims->child; d; d = d->next) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(d, "name");
        if (cJSON_IsString(name) && !strcmp(name->valuestring, pivot))
            return d;
    }
    return NULL;
}

static int pivot_error(const rp_matrix *m, const char *pivot)
{
    tb_strbuf sb;
    tb_sb_init(&sb);
    for (const cJSON *d = m->dims->child; d; d = d->next) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(d, "name");
        if (cJSON_IsString(name))
            tb_sb_printf(&sb, "%s%s", sb.len ? ", " : "", name->valuestring);
    }
    int rc = sb.len ? tb_fail(TB_ERR_USAGE, "--pivot: '%s' is not a dimension of matrix '%s'; its dimensions: %s",
                              pivot, m->name, tb_sb_str(&sb))
                    : tb_fail(TB_ERR_USAGE, "--pivot: matrix '%s' has no axes, steps or rows to pivot on", m->name);
    tb_sb_free(&sb);
    return rc;
}

static int print_pivot_metric(const rp_matrix *m, const char *pivot, const cJSON *levels, int k, FILE *out)
{
    int n_levels = cJSON_GetArraySize(levels);
    tb_table t;
    tb_table_init(&t);
    tb_table_add_column(&t, "Configuration", false);
    for (const cJSON *l = levels->child; l; l = l->next)
        tb_table_add_column(&t, cJSON_IsString(l) ? l->valuestring : "?", true);
    /* rows: distinct rest labels in matrix order */
    char (*rest)[TB_LABEL_MAX] = calloc((size_t)(m->n_rows > 0 ? m->n_rows : 1), sizeof *rest);
    char (*cellbuf)[96] = calloc((size_t)n_levels, sizeof *cellbuf);
    const char **cells = calloc((size_t)n_levels + 1, sizeof *cells);
    if (!rest || !cellbuf || !cells) {
        free(rest);
        free(cellbuf);
        free(cells);
        tb_table_free(&t);
        return tb_fail(TB_ERR_NOMEM, "out of memory");
    }
    int n_rest = 0;
    char base_rest[TB_LABEL_MAX] = "";
    for (int i = 0; i < m->n_rows; i++) {
        if (!m->rows[i].parts->child)
            continue; /* outside the grid */
        char r[TB_LABEL_MAX];
        rest_label(m, &m->rows[i], pivot, r, sizeof r);
        if (!strcmp(m->rows[i].label, m->baseline))
            snprintf(base_rest, sizeof base_rest, "%s", r);
        bool seen = false;
        for (int j = 0; j < n_rest; j++)
            seen = seen || !strcmp(rest[j], r);
        if (!seen)
            snprintf(rest[n_rest++], TB_LABEL_MAX, "%s", r);
    }
    for (int j = 0; j < n_rest; j++) {
        cells[0] = rest[j];
        int li = 0;
        for (const cJSON *l = levels->child; l; l = l->next, li++) {
            cell(cellbuf[li], sizeof cellbuf[li], DASH);
            cells[li + 1] = cellbuf[li];
            const rp_row *hit = NULL, *base = NULL;
            for (int i = 0; i < m->n_rows; i++) {
                const cJSON *part = cJSON_GetObjectItemCaseSensitive(m->rows[i].parts, pivot);
                if (!cJSON_IsString(part) || !cJSON_IsString(l) || strcmp(part->valuestring, l->valuestring))
                    continue;
                char r[TB_LABEL_MAX];
                rest_label(m, &m->rows[i], pivot, r, sizeof r);
                if (!strcmp(r, rest[j]))
                    hit = &m->rows[i];
                if (base_rest[0] && !strcmp(r, base_rest))
                    base = &m->rows[i];
            }
            if (!hit)
                continue;
            char ms[48], d[32] = "";
            format_mean_std(m->metrics[k], &hit->stats[k], ms, sizeof ms);
            if (base && base != hit && hit->stats[k].n > 0 && base->stats[k].n > 0) {
                char dv[24];
                rp_format_value(m->metrics[k], hit->stats[k].mean - base->stats[k].mean, true, dv, sizeof dv);
                cell(d, sizeof d, " (%s)", dv);
            }
            cell(cellbuf[li], sizeof cellbuf[li], "%s%s", ms, d);
        }
        tb_table_add_row(&t, cells);
    }
    fprintf(out, "\n### %s by %s\n\n", m->metrics[k], pivot);
    int rc = tb_table_print_md(&t, out);
    free(rest);
    free(cellbuf);
    free(cells);
    tb_table_free(&t);
    return rc;
}

int rp_print_md(const rp_matrix *m, const tb_report_options *opt, FILE *out)
{
    /* every block below starts with its own blank line */
    fprintf(out, "## %s\n", m->name);
    if (m->description && m->description[0])
        fprintf(out, "\n%s\n", m->description);
    if (m->n_metrics == 0 && m->n_unfinished == m->n_runs)
        fprintf(out, "\nNo finished runs yet.\n");
    if (opt->pivot) {
        const cJSON *dim = find_dim(m, opt->pivot);
        if (!dim)
            return pivot_error(m, opt->pivot);
        const cJSON *levels = cJSON_GetObjectItemCaseSensitive(dim, "levels");
        for (int k = 0; k < m->n_metrics; k++)
            TB_TRY(print_pivot_metric(m, opt->pivot, levels, k, out));
        fprintf(out, "\nmean ± sample std over seeds; (Δ) against the row of \"%s\" in the same column.\n",
                m->baseline);
        for (int i = 0; i < m->n_rows; i++)
            if (!m->rows[i].parts->child)
                fprintf(out, "Outside the grid, not shown: %s.\n", m->rows[i].label);
    } else {
        fputc('\n', out);
        TB_TRY(print_plain(m, out));
        print_notes(m, out);
    }
    return print_effects(m, out);
}

static void csv_number(double v, char *buf, size_t size)
{
    if (isfinite(v))
        tb_json_format_number(v, buf, size);
    else
        buf[0] = '\0';
}

int rp_print_csv(const rp_matrix *m, bool header, FILE *out)
{
    tb_table t;
    tb_table_init(&t);
    static const char *const cols[] = {"matrix", "label", "parts", "runs", "metric", "n", "mean", "std", "delta",
                                       "p", "reference", "seconds_per_epoch", "images_per_sec"};
    for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++)
        tb_table_add_column(&t, cols[c], false);
    for (int i = 0; i < m->n_rows; i++) {
        const rp_row *r = &m->rows[i];
        char *parts = cJSON_PrintUnformatted(r->parts);
        for (int k = 0; k < m->n_metrics; k++) {
            const rp_stats *s = &r->stats[k];
            char num[9][40];
            snprintf(num[0], sizeof num[0], "%d", r->runs);
            snprintf(num[1], sizeof num[1], "%d", s->n);
            csv_number(s->mean, num[2], sizeof num[2]);
            csv_number(s->std, num[3], sizeof num[3]);
            csv_number(s->delta, num[4], sizeof num[4]);
            csv_number(s->p, num[5], sizeof num[5]);
            csv_number(s->ref, num[6], sizeof num[6]);
            csv_number(r->sec_median, num[7], sizeof num[7]);
            csv_number(r->ips_median, num[8], sizeof num[8]);
            const char *cells[] = {m->name, r->label, parts ? parts : "{}", num[0], m->metrics[k], num[1], num[2],
                                   num[3], num[4], num[5], num[6], num[7], num[8]};
            tb_table_add_row(&t, cells);
        }
        free(parts);
    }
    int rc = tb_table_print_csv(&t, header, out);
    tb_table_free(&t);
    return rc;
}

static void add_number(cJSON *o, const char *key, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

cJSON *rp_to_json(const rp_matrix *m)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "name", m->name);
    cJSON_AddStringToObject(o, "description", m->description ? m->description : "");
    cJSON_AddStringToObject(o, "baseline", m->baseline);
    cJSON_AddItemToObject(o, "metrics", cJSON_CreateStringArray((const char *const *)m->metrics, m->n_metrics));
    cJSON *rows = cJSON_AddArrayToObject(o, "rows");
    for (int i = 0; rows && i < m->n_rows; i++) {
        const rp_row *r = &m->rows[i];
        cJSON *row = cJSON_CreateObject();
        if (!row)
            break;
        cJSON_AddItemToArray(rows, row);
        cJSON_AddStringToObject(row, "label", r->label);
        cJSON_AddItemToObject(row, "parts", cJSON_Duplicate(r->parts, true));
        cJSON_AddNumberToObject(row, "runs", r->runs);
        cJSON_AddNumberToObject(row, "finished", r->finished);
        cJSON_AddNumberToObject(row, "failed", r->failed);
        cJSON_AddNumberToObject(row, "diverged", r->diverged);
        add_number(row, "seconds_per_epoch", r->sec_median);
        add_number(row, "images_per_sec", r->ips_median);
        cJSON *metrics = cJSON_AddObjectToObject(row, "metrics");
        for (int k = 0; metrics && k < m->n_metrics; k++) {
            const rp_stats *s = &r->stats[k];
            cJSON *x = cJSON_AddObjectToObject(metrics, m->metrics[k]);
            if (!x)
                break;
            cJSON_AddNumberToObject(x, "n", s->n);
            add_number(x, "mean", s->mean);
            add_number(x, "std", s->std);
            add_number(x, "delta", s->delta);
            add_number(x, "p", s->p);
            add_number(x, "reference", s->ref);
        }
    }
    cJSON *effects = cJSON_AddObjectToObject(o, "effects");
    for (int k = 0; effects && m->effects && k < m->n_metrics; k++) {
        cJSON *list = cJSON_AddArrayToObject(effects, m->metrics[k]);
        for (int i = 0; list && i < m->n_effects[k]; i++) {
            cJSON *e = cJSON_CreateObject();
            if (!e)
                break;
            cJSON_AddItemToArray(list, e);
            cJSON_AddStringToObject(e, "effect", m->effects[k][i].name);
            add_number(e, "estimate", m->effects[k][i].estimate);
            add_number(e, "se", m->effects[k][i].se);
            add_number(e, "p", m->effects[k][i].p);
        }
    }
    return o;
}
