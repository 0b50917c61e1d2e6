/* Statistics for reports: mean, sample standard deviation, median, and
 * Welch's t-test with the Student-t distribution computed through the
 * regularized incomplete beta function (continued fraction, Lentz's method). */
#ifndef TB_STATS_H
#define TB_STATS_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

double tb_stats_mean(const double *x, int n);            /* NaN for n = 0 */
double tb_stats_std(const double *x, int n);             /* sample (n - 1); NaN for n < 2 */
double tb_stats_median(const double *x, int n);          /* NaN for n = 0; ignores NaN entries */

/* I_x(a, b), the regularized incomplete beta function, for a, b > 0 and x in [0, 1]. */
double tb_stats_incbeta(double a, double b, double x);

/* P(T <= t) for Student's t with `df` > 0 degrees of freedom (df may be fractional). */
double tb_stats_t_cdf(double t, double df);

/* Two-sided p value P(|T| >= |t|). */
double tb_stats_t_pvalue(double t, double df);

typedef struct tb_welch {
    double t;       /* (mean_a - mean_b) / sqrt(var_a/n_a + var_b/n_b) */
    double df;      /* Welch–Satterthwaite degrees of freedom */
    double p;       /* two-sided */
} tb_welch;

/* Welch's unequal-variance t-test of mean_a vs mean_b from sample variances.
 * False (and NaNs) when undefined: a group with n < 2, or both variances 0. */
bool tb_stats_welch(double mean_a, double var_a, int n_a, double mean_b, double var_b, int n_b, tb_welch *out);

#ifdef __cplusplus
}
#endif
#endif
