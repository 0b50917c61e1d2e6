#include "model_test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "kernels/error.h"

tb_model_spec test_spec(const char *name, char variant, tb_model_stem stem, int image, float width, int classes)
{
    tb_model_spec s;
    assert_int_equal(tb_model_spec_default(&s, name), TB_OK);
    s.variant = variant;
    s.stem = stem;
    s.image = image;
    s.width = width;
    s.classes = classes;
    return s;
}

tb_graph *test_build(tb_backend *be, const tb_model_spec *spec, int batch, bool allocate)
{
    tb_graph *g = NULL;
    assert_int_equal(tb_graph_create(&g, be, TB_F32, batch), TB_OK);
    int rc = tb_model_build(g, spec);
    if (rc == TB_OK)
        rc = tb_graph_finalize(g, allocate);
    if (rc != TB_OK)
        fail_msg("building %s %c: %s", spec->name, spec->variant, tb_errmsg());
    return g;
}

int test_find_node(const tb_graph *g, const char *name)
{
    for (int i = 0; i < tb_graph_n_nodes(g); i++) {
        tb_node_info info;
        assert_int_equal(tb_graph_node_info(g, i, &info), TB_OK);
        if (!strcmp(info.name, name))
            return i;
    }
    return -1;
}

int test_producer(const tb_graph *g, tb_value v)
{
    for (int i = 0; i < tb_graph_n_nodes(g); i++) {
        tb_node_info info;
        assert_int_equal(tb_graph_node_info(g, i, &info), TB_OK);
        if (info.output == v)
            return i;
    }
    return -1;
}
