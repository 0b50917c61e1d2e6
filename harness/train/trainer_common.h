/* What every trainer does the same way: open the backend the run asks for,
 * and hand the loaders the backend's host allocator (pinned memory on CUDA). */
#ifndef TB_TRAINER_COMMON_H
#define TB_TRAINER_COMMON_H

#include <stddef.h>

#include "harness/train/trainer.h"
#include "kernels/backend.h"

/* Creates the backend of opt->device (else cfg->device, else auto), says on
 * stderr what was picked unless opt->quiet, and names it in res->device. */
int tb_trainer_open_backend(const tb_run_config *cfg, const tb_train_options *opt, tb_train_result *res,
                            tb_backend **out);

/* Loader allocation hooks; user is the tb_backend. */
int tb_trainer_loader_alloc(void *user, void **p, size_t bytes);
void tb_trainer_loader_free(void *user, void *p);

#endif
