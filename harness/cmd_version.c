#include <stdio.h>

#include "tb_build_config.h"
#include "tb_git.h"
#include "harness/cli.h"
#include "harness/commands.h"
#include "kernels/backend.h"
#include "kernels/cpu/gemm.h"

static const char usage[] =
    "usage: trickbench version\n\n"
    "Prints the trickbench version, the git commit it was built from, the\n"
    "backends compiled in, whether a usable GPU is present, the oneDNN version\n"
    "and instruction set the CPU backend's kernels use, and whether VOC annotation XML can be\n"
    "read (built with libxml2).\n";

int tb_cmd_version(int argc, char **argv)
{
    if (tb_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return TB_EXIT_OK;
    }
    if (argc > 1)
        return tb_cli_usage_error("version", "unexpected argument '%s'", argv[1]);
    char why[256] = "";
    bool gpu = tb_cuda_available(why, sizeof why);
    printf("trickbench %s (git %s)\n", TB_VERSION, TB_GIT_COMMIT);
    printf("backends: cpu%s\n", HAVE_CUDA ? ", cuda" : "");
    printf("gpu: %s\n", gpu ? "available" : why);
    printf("cpu gemm: %s kernels\n", tb_cpu_gemm_library());
    printf("annotation XML (detection datasets): %s\n", HAVE_LIBXML2 ? "libxml2" : "not built (no libxml2)");
    return TB_EXIT_OK;
}
