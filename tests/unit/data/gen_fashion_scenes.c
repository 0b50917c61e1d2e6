/* Generates a fashion-scenes dataset and prints the time it took (a tool,
 * not a test; trickbench's CLI wires the same call):
 *   ninja -C build tests/unit/data/gen_fashion_scenes
 *   build/tests/unit/data/gen_fashion_scenes ROOT [train test size max_items seed threads source]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "harness/data/fashion_scenes.h"
#include "kernels/error.h"

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 9) {
        fprintf(stderr, "usage: %s ROOT [train test size max_items seed threads source]\n", argv[0]);
        return 64;
    }
    tb_fashion_scenes_options o;
    tb_fashion_scenes_defaults(&o);
    if (argc > 2)
        o.train_count = atoll(argv[2]);
    if (argc > 3)
        o.test_count = atoll(argv[3]);
    if (argc > 4)
        o.size = atoi(argv[4]);
    if (argc > 5)
        o.max_items = atoi(argv[5]);
    if (argc > 6)
        o.seed = strtoull(argv[6], NULL, 10);
    if (argc > 7)
        o.threads = atoi(argv[7]);
    if (argc > 8)
        snprintf(o.source, sizeof o.source, "%s", argv[8]);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = tb_fashion_scenes_ensure(&o, argv[1]);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc != TB_OK) {
        fprintf(stderr, "error: %s\n", tb_errmsg());
        return tb_status_exit_code(rc);
    }
    printf("%s/%s: %lld + %lld scenes of %dx%d ready in %.2f s\n", argv[1], TB_FASHION_SCENES_FOLDER,
           (long long)o.train_count, (long long)o.test_count, o.size, o.size,
           (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    return 0;
}
