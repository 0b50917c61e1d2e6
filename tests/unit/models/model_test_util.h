/* Shared helpers of the model tests: build a model from a few fields. */
#ifndef TB_MODEL_TEST_UTIL_H
#define TB_MODEL_TEST_UTIL_H

#include <stdbool.h>

#include "kernels/backend.h"
#include "models/graph.h"
#include "models/models.h"

/* Fills a spec from the defaults of `name` and the given fields. */
tb_model_spec test_spec(const char *name, char variant, tb_model_stem stem, int image, float width, int classes);

/* Creates a graph, builds the model and finalizes it (allocate or counts
 * only). Fails the test on any error. */
tb_graph *test_build(tb_backend *be, const tb_model_spec *spec, int batch, bool allocate);

/* Index of the node named `name` (first match), -1 if none. */
int test_find_node(const tb_graph *g, const char *name);

/* Index of the node producing value v, -1 if none. */
int test_producer(const tb_graph *g, tb_value v);

#endif
