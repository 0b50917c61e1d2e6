/* Reports, part 2: main effects and two-factor interactions of a full
 * factorial grid.
 *
 * Each cell of the grid (one level of every dimension) has a mean ȳ_c over
 * its n_c seeds. An effect is a contrast Σ w_c ȳ_c:
 *   main effect of level j of dimension d: the mean over the cells at level j
 *     minus the mean over the cells at level 0 (averaging the other factors);
 *   interaction of two 2-level dimensions A and B: the effect of A at B's
 *     second level minus the effect of A at B's first level ("does the
 *     trick's gain depend on the other one?"; 0 = additive).
 * Its standard error is s·sqrt(Σ w_c² / n_c), with s² the within-cell
 * variance pooled over cells (df = Σ (n_c − 1)); p from Student's t. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/report_internal.h"
#include "harness/stats.h"
#include "kernels/error.h"

typedef struct grid {
    int n_dims;
    int n_levels[16];
    const char *names[16];
    const cJSON *levels[16];
    int n_cells;
} grid;

static int level_index(const cJSON *levels, const char *label)
{
    int i = 0;
    for (const cJSON *l = levels->child; l; l = l->next, i++)
        if (cJSON_IsString(l) && !strcmp(l->valuestring, label))
            return i;
    return -1;
}

/* Cell index of a row (mixed radix over the dimensions), or -1 when the row
 * is outside the grid (an include row). */
static int cell_of(const grid *g, const rp_row *r)
{
    int cell = 0;
    for (int d = 0; d < g->n_dims; d++) {
        const cJSON *part = cJSON_GetObjectItemCaseSensitive(r->parts, g->names[d]);
        int j = cJSON_IsString(part) ? level_index(g->levels[d], part->valuestring) : -1;
        if (j < 0)
            return -1;
        cell = cell * g->n_levels[d] + j;
    }
    return cell;
}

static int digit(const grid *g, int cell, int d)
{
    for (int e = g->n_dims - 1; e > d; e--)
        cell /= g->n_levels[e];
    return cell % g->n_levels[d];
}

static void finish_effect(rp_effect *e, const double *w, const double *mean, const int *n, int cells, double s2,
                          int df)
{
    double est = 0, var = 0;
    for (int c = 0; c < cells; c++) {
        est += w[c] * mean[c];
        var += w[c] * w[c] / n[c];
    }
    e->estimate = est;
    e->se = df > 0 ? sqrt(s2 * var) : NAN;
    e->p = df > 0 && e->se > 0 ? tb_stats_t_pvalue(est / e->se, df) : NAN;
}

static const char *level_name(const grid *g, int d, int j)
{
    const cJSON *l = cJSON_GetArrayItem(g->levels[d], j);
    return cJSON_IsString(l) ? l->valuestring : "?";
}

/* Effects of one metric; `mean`, `n` per cell. */
static int metric_effects(const grid *g, const double *mean, const int *n, double s2, int df, rp_effect **out,
                          int *n_out)
{
    int max = 0;
    for (int d = 0; d < g->n_dims; d++)
        max += g->n_levels[d] - 1;
    max += g->n_dims * g->n_dims;
    rp_effect *e = calloc((size_t)max, sizeof *e);
    double *w = calloc((size_t)g->n_cells, sizeof *w);
    if (!e || !w) {
        free(e);
        free(w);
        return tb_fail(TB_ERR_NOMEM, "out of memory computing effects");
    }
    int k = 0;
    for (int d = 0; d < g->n_dims; d++) {
        int per_level = g->n_cells / g->n_levels[d];
        for (int j = 1; j < g->n_levels[d]; j++) {
            for (int c = 0; c < g->n_cells; c++) {
                int x = digit(g, c, d);
                w[c] = x == j ? 1.0 / per_level : x == 0 ? -1.0 / per_level : 0;
            }
            snprintf(e[k].name, sizeof e[k].name, "%s (vs %s)", level_name(g, d, j), level_name(g, d, 0));
            finish_effect(&e[k++], w, mean, n, g->n_cells, s2, df);
        }
    }
    for (int a = 0; a < g->n_dims; a++) {
        for (int b = a + 1; b < g->n_dims; b++) {
            if (g->n_levels[a] != 2 || g->n_levels[b] != 2)
                continue;
            int per_quadrant = g->n_cells / 4;
            for (int c = 0; c < g->n_cells; c++) {
                int sa = digit(g, c, a) ? 1 : -1, sb = digit(g, c, b) ? 1 : -1;
                w[c] = (double)(sa * sb) / per_quadrant;
            }
            snprintf(e[k].name, sizeof e[k].name, "%s × %s", level_name(g, a, 1), level_name(g, b, 1));
            finish_effect(&e[k++], w, mean, n, g->n_cells, s2, df);
        }
    }
    free(w);
    *out = e;
    *n_out = k;
    return TB_OK;
}

static bool build_grid(const rp_matrix *m, grid *g, char *why, size_t size)
{
    memset(g, 0, sizeof *g);
    int multi = 0;
    g->n_cells = 1;
    for (const cJSON *d = m->dims ? m->dims->child : NULL; d; d = d->next) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(d, "name");
        const cJSON *levels = cJSON_GetObjectItemCaseSensitive(d, "levels");
        if (!cJSON_IsString(name) || !cJSON_IsArray(levels) || g->n_dims == 16)
            return false;
        g->names[g->n_dims] = name->valuestring;
        g->levels[g->n_dims] = levels;
        g->n_levels[g->n_dims] = cJSON_GetArraySize(levels);
        g->n_cells *= g->n_levels[g->n_dims];
        multi += g->n_levels[g->n_dims] > 1;
        g->n_dims++;
    }
    if (multi < 2) {
        snprintf(why, size, "%s", ""); /* not a factorial design: nothing to say */
        return false;
    }
    return g->n_cells <= 4096;
}

int rp_compute_effects(rp_matrix *m)
{
    grid g;
    if (!build_grid(m, &g, m->effects_note, sizeof m->effects_note) || m->n_metrics == 0)
        return TB_OK;
    double *mean = malloc((size_t)g.n_cells * sizeof *mean);
    int *n = calloc((size_t)g.n_cells, sizeof *n);
    m->effects = calloc((size_t)m->n_metrics, sizeof *m->effects);
    m->n_effects = calloc((size_t)m->n_metrics, sizeof *m->n_effects);
    int rc = mean && n && m->effects && m->n_effects ? TB_OK : tb_fail(TB_ERR_NOMEM, "out of memory");
    for (int k = 0; rc == TB_OK && k < m->n_metrics; k++) {
        for (int c = 0; c < g.n_cells; c++) {
            mean[c] = NAN;
            n[c] = 0;
        }
        double ss = 0;
        int df = 0;
        for (int i = 0; i < m->n_rows; i++) {
            int c = cell_of(&g, &m->rows[i]);
            const rp_stats *s = &m->rows[i].stats[k];
            if (c < 0 || s->n == 0)
                continue;
            mean[c] = s->mean;
            n[c] = s->n;
            if (s->n > 1) {
                ss += (s->n - 1) * s->std * s->std;
                df += s->n - 1;
            }
        }
        int missing = 0;
        for (int c = 0; c < g.n_cells; c++)
            missing += n[c] == 0;
        if (missing) {
            snprintf(m->effects_note, sizeof m->effects_note,
                     "effects need a result in every cell of the grid; %d of %d cells have none yet", missing,
                     g.n_cells);
            for (int j = 0; j < k; j++)
                free(m->effects[j]);
            free(m->effects);
            free(m->n_effects);
            m->effects = NULL;
            m->n_effects = NULL;
            break;
        }
        m->effects_df = df;
        rc = metric_effects(&g, mean, n, df > 0 ? ss / df : NAN, df, &m->effects[k], &m->n_effects[k]);
    }
    free(mean);
    free(n);
    return rc;
}
