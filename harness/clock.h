/* Wall-clock seconds from a monotonic clock, for timing epochs and benchmarks. */
#ifndef TB_CLOCK_H
#define TB_CLOCK_H

#include <time.h>

static inline double tb_seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
