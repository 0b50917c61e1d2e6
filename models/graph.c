/* PENDING: the graph implementation lands next. */
#include "models/graph.h"
#include "kernels/error.h"
int tb_graph_create(tb_graph **out, tb_backend *be, tb_dtype dtype, int batch)
{
    (void)be; (void)dtype; (void)batch;
    *out = 0;
    return tb_fail(TB_ERR_NOT_IMPLEMENTED, "graph: not implemented yet");
}
