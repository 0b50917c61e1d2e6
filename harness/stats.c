#include "harness/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double tb_stats_mean(const double *x, int n)
{
    if (n <= 0)
        return NAN;
    double s = 0;
    for (int i = 0; i < n; i++)
        s += x[i];
    return s / n;
}

double tb_stats_std(const double *x, int n)
{
    if (n < 2)
        return NAN;
    double m = tb_stats_mean(x, n), ss = 0;
    for (int i = 0; i < n; i++)
        ss += (x[i] - m) * (x[i] - m); /* two-pass: no cancellation for values like 76.1, 76.2 */
    return sqrt(ss / (n - 1));
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double tb_stats_median(const double *x, int n)
{
    double *v = n > 0 ? malloc((size_t)n * sizeof *v) : NULL;
    if (!v)
        return NAN;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(x[i]))
            v[k++] = x[i];
    double r = NAN;
    if (k > 0) {
        qsort(v, (size_t)k, sizeof *v, cmp_double);
        r = k % 2 ? v[k / 2] : 0.5 * (v[k / 2 - 1] + v[k / 2]);
    }
    free(v);
    return r;
}

/* The continued fraction of I_x(a, b) (Numerical Recipes' betacf, evaluated
 * with the modified Lentz method); converges fast for x < (a+1)/(a+b+2). */
static double beta_cf(double a, double b, double x)
{
    const double tiny = 1e-300, eps = 1e-15;
    double qab = a + b, qap = a + 1, qam = a - 1;
    double c = 1, d = 1 - qab * x / qap;
    if (fabs(d) < tiny)
        d = tiny;
    d = 1 / d;
    double h = d;
    for (int m = 1; m <= 1000; m++) {
        int m2 = 2 * m;
        double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1 + aa * d;
        if (fabs(d) < tiny)
            d = tiny;
        c = 1 + aa / c;
        if (fabs(c) < tiny)
            c = tiny;
        d = 1 / d;
        h *= d * c;
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1 + aa * d;
        if (fabs(d) < tiny)
            d = tiny;
        c = 1 + aa / c;
        if (fabs(c) < tiny)
            c = tiny;
        d = 1 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1) < eps)
            break;
    }
    return h;
}

double tb_stats_incbeta(double a, double b, double x)
{
    if (!(a > 0) || !(b > 0) || isnan(x))
        return NAN;
    if (x <= 0)
        return 0;
    if (x >= 1)
        return 1;
    /* x^a (1-x)^b / (a B(a, b)), in logs to stay finite for large a, b */
    double front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x));
    /* use the symmetry I_x(a,b) = 1 - I_{1-x}(b,a) where the fraction converges faster */
    if (x < (a + 1) / (a + b + 2))
        return front * beta_cf(a, b, x) / a;
    return 1 - front * beta_cf(b, a, 1 - x) / b;
}

double tb_stats_t_pvalue(double t, double df)
{
    if (isnan(t) || !(df > 0))
        return NAN;
    if (isinf(t))
        return 0;
    /* P(|T| >= |t|) = I_{df/(df+t^2)}(df/2, 1/2) */
    return tb_stats_incbeta(df / 2, 0.5, df / (df + t * t));
}

double tb_stats_t_cdf(double t, double df)
{
    double tail = 0.5 * tb_stats_t_pvalue(t, df);
    return t >= 0 ? 1 - tail : tail;
}

bool tb_stats_welch(double mean_a, double var_a, int n_a, double mean_b, double var_b, int n_b, tb_welch *out)
{
    out->t = out->df = out->p = NAN;
    if (n_a < 2 || n_b < 2 || !isfinite(var_a) || !isfinite(var_b))
        return false;
    double sa = var_a / n_a, sb = var_b / n_b;
    if (sa + sb <= 0)
        return false;
    out->t = (mean_a - mean_b) / sqrt(sa + sb);
    out->df = (sa + sb) * (sa + sb) / (sa * sa / (n_a - 1) + sb * sb / (n_b - 1));
    out->p = tb_stats_t_pvalue(out->t, out->df);
    return true;
}
