/* Normalisation statistics: built-in constants and sampled per-channel
 * mean/std. All values are in the 0..255 pixel scale. */
#include <math.h>
#include <string.h>

#include "harness/data/dataset_impl.h"
#include "kernels/error.h"

void tb_pixel_stats_add(tb_pixel_stats *s, const uint8_t *px, int64_t npix, int c)
{
    /* integer sums per call avoid float rounding over millions of pixels */
    for (int k = 0; k < c; k++) {
        uint64_t sum = 0, sumsq = 0;
        for (int64_t i = 0; i < npix; i++) {
            uint64_t v = px[i * c + k];
            sum += v;
            sumsq += v * v;
        }
        s->sum[k] += (double)sum;
        s->sumsq[k] += (double)sumsq;
    }
    s->count += npix;
}

int tb_pixel_stats_finish(const tb_pixel_stats *s, int c, float mean[3], float std[3], const char *what)
{
    TB_CHECK(s->count > 0, TB_ERR_DATA, "%s: no pixels to compute the normalisation statistics from", what);
    for (int k = 0; k < 3; k++) {
        int src = k < c ? k : 0;
        double m = s->sum[src] / (double)s->count;
        double var = s->sumsq[src] / (double)s->count - m * m;
        double sd = sqrt(var > 0 ? var : 0);
        mean[k] = (float)m;
        /* a constant image set would divide by zero: keep the scale instead */
        std[k] = sd < 1e-3 ? 1.0f : (float)sd;
    }
    return TB_OK;
}

bool tb_builtin_normalization(const char *dataset, float mean[3], float std[3])
{
    /* Fashion-MNIST: mean and population std of all 60000 x 784 pixels of
     * train-images-idx3-ubyte.gz (Debian dataset-fashion-mnist), computed
     * once with a 20-line zlib program (sum and sum of squares in doubles). */
    static const float fmnist_mean = 72.940352f, fmnist_std = 90.021182f;
    /* CIFAR: per-channel mean and population std of the 50000 training
     * images (the widely used values 0.4914/0.4822/0.4465 and
     * 0.2470/0.2435/0.2616 for CIFAR-10; 0.5071/0.4865/0.4409 and
     * 0.2673/0.2564/0.2762 for CIFAR-100), times 255. */
    static const float c10_mean[3] = {125.307f, 122.950f, 113.865f};
    static const float c10_std[3] = {62.993f, 62.089f, 66.705f};
    static const float c100_mean[3] = {129.304f, 124.070f, 112.434f};
    static const float c100_std[3] = {68.170f, 65.392f, 70.418f};
    /* ImageNet: the constants of the paper's code (GluonCV / torchvision:
     * 0.485/0.456/0.406 and 0.229/0.224/0.225, times 255). */
    static const float in_mean[3] = {123.675f, 116.28f, 103.53f};
    static const float in_std[3] = {58.395f, 57.12f, 57.375f};
    const float *m = NULL, *sd = NULL;
    if (strcmp(dataset, "fashion-mnist") == 0) {
        for (int k = 0; k < 3; k++) {
            mean[k] = fmnist_mean;
            std[k] = fmnist_std;
        }
        return true;
    }
    if (strcmp(dataset, "cifar10") == 0) {
        m = c10_mean;
        sd = c10_std;
    } else if (strcmp(dataset, "cifar100") == 0) {
        m = c100_mean;
        sd = c100_std;
    } else if (strcmp(dataset, "imagenet") == 0) {
        m = in_mean;
        sd = in_std;
    } else {
        return false;
    }
    for (int k = 0; k < 3; k++) {
        mean[k] = m[k];
        std[k] = sd[k];
    }
    return true;
}
