/* Shared by the trainers: see trainer_common.h. */
#include "harness/train/trainer_common.h"

#include <stdio.h>
#include <string.h>

#include "kernels/error.h"

int tb_trainer_open_backend(const tb_run_config *cfg, const tb_train_options *opt, tb_train_result *res,
                            tb_backend **out)
{
    tb_device_kind kind;
    const char *dev = opt->device ? opt->device : cfg->device;
    TB_TRY(tb_device_parse(dev[0] ? dev : "auto", &kind));
    char note[256];
    TB_TRY(tb_backend_create(out, kind, opt->threads, note, sizeof note));
    if (!opt->quiet)
        fprintf(stderr, "%s\n", note);
    snprintf(res->device, sizeof res->device, "%s", (*out)->name);
    return TB_OK;
}

int tb_trainer_loader_alloc(void *user, void **p, size_t bytes)
{
    tb_backend *be = user;
    return be->iface.alloc_host(be, p, bytes);
}

void tb_trainer_loader_free(void *user, void *p)
{
    tb_backend *be = user;
    be->iface.free_host(be, p);
}

tb_trainer_fn tb_trainer_for_task(tb_task task)
{
    switch (task) {
    case TB_TASK_CLASSIFICATION: return tb_train_classification;
    case TB_TASK_DETECTION: return tb_train_detection;
    case TB_TASK_SEGMENTATION: break;
    }
    tb_fail(TB_ERR_NOT_IMPLEMENTED, "task: \"%s\" has no trainer yet (classification and detection do)",
            tb_task_name(task));
    return NULL;
}
