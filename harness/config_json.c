/* Run config -> JSON: the fully resolved tree, its canonical text and the
 * SHA-256 that identifies a run. Every key of the table is written, so two
 * configs that differ only in omitted defaults hash the same. */
#include "harness/config.h"

#include <stdlib.h>
#include <string.h>

#include "harness/config_keys.h"
#include "harness/json_util.h"
#include "kernels/error.h"

const char *tb_task_name(tb_task task)
{
    static const char *const names[] = {"classification", "detection", "segmentation"};
    return (unsigned)task < 3 ? names[task] : "unknown";
}

const char *tb_schedule_name(tb_schedule_type type)
{
    static const char *const names[] = {"step", "cosine", "poly", "linear", "constant"};
    return (unsigned)type < 5 ? names[type] : "unknown";
}

const char *tb_precision_name(tb_precision prec)
{
    static const char *const names[] = {"fp32", "fp16", "bf16"};
    return (unsigned)prec < 3 ? names[prec] : "unknown";
}

/* A number whose text is the shortest that reads back as the float. */
static cJSON *float_number(float v)
{
    char buf[40];
    tb_json_format_float(v, buf, sizeof buf);
    return cJSON_CreateNumber(strtod(buf, NULL));
}

cJSON *tb_config_key_json(const tb_run_config *cfg, const tb_config_key *k)
{
    const char *field = (const char *)cfg + k->offset;
    switch (k->kind) {
    case TB_KEY_STRING:
    case TB_KEY_CHOICE:
        return cJSON_CreateString(field);
    case TB_KEY_ENUM: {
        int i;
        memcpy(&i, field, sizeof i);
        return cJSON_CreateString(k->choices[i]);
    }
    case TB_KEY_INT: return cJSON_CreateNumber(*(const int *)(const void *)field);
    case TB_KEY_INT64: return cJSON_CreateNumber((double)*(const int64_t *)(const void *)field);
    case TB_KEY_UINT64: return cJSON_CreateNumber((double)*(const uint64_t *)(const void *)field);
    case TB_KEY_DOUBLE: return cJSON_CreateNumber(*(const double *)(const void *)field);
    case TB_KEY_FLOAT: return float_number(*(const float *)(const void *)field);
    case TB_KEY_BOOL: return cJSON_CreateBool(*(const bool *)(const void *)field);
    case TB_KEY_VARIANT: {
        char s[2] = {*field, '\0'};
        return cJSON_CreateString(s);
    }
    case TB_KEY_STEP_LIST:
        return cJSON_CreateIntArray(cfg->schedule.step_epochs, cfg->schedule.n_step_epochs);
    case TB_KEY_FLOAT_LIST: {
        const tb_float_list *l = (const tb_float_list *)(const void *)field;
        cJSON *arr = cJSON_CreateArray();
        for (int i = 0; arr && i < l->n; i++) {
            cJSON *e = float_number(l->v[i]);
            if (!e || !cJSON_AddItemToArray(arr, e)) {
                cJSON_Delete(e);
                cJSON_Delete(arr);
                return NULL;
            }
        }
        return arr;
    }
    case TB_KEY_LOSS_SCALE:
        if (cfg->tricks.loss_scale_dynamic)
            return cJSON_CreateString("dynamic");
        return cJSON_CreateNumber(cfg->tricks.loss_scale);
    case TB_KEY_SECTION:
        return cJSON_CreateObject();
    }
    return NULL;
}

/* The object that holds `path`'s leaf, found by walking the sections
 * already created (sections precede their keys in the table). */
static cJSON *parent_object(cJSON *root, const char *path, const char **leaf)
{
    cJSON *obj = root;
    const char *p = path;
    const char *dot;
    while ((dot = strchr(p, '.')) != NULL) {
        char name[64];
        size_t n = (size_t)(dot - p);
        if (n >= sizeof name)
            return NULL;
        memcpy(name, p, n);
        name[n] = '\0';
        obj = cJSON_GetObjectItemCaseSensitive(obj, name);
        if (!cJSON_IsObject(obj))
            return NULL;
        p = dot + 1;
    }
    *leaf = p;
    return obj;
}

cJSON *tb_config_to_json(const tb_run_config *cfg)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    for (size_t i = 0; i < tb_config_n_keys; i++) {
        const tb_config_key *k = &tb_config_keys[i];
        if (!strncmp(k->path, "tricks.distill", 14) && !cfg->tricks.distill.enabled) {
            if (!strcmp(k->path, "tricks.distill")) {
                cJSON *tricks = cJSON_GetObjectItemCaseSensitive(root, "tricks");
                if (!tricks || !cJSON_AddNullToObject(tricks, "distill"))
                    goto oom;
            }
            continue; /* distillation off: "distill": null and no sub-keys */
        }
        if (!tb_config_key_applies(cfg, k))
            continue; /* a key of another task: absent, so it never changes a run's identity */
        const char *leaf = NULL;
        cJSON *parent = parent_object(root, k->path, &leaf);
        cJSON *v = tb_config_key_json(cfg, k);
        if (!parent || !v) {
            cJSON_Delete(v);
            goto oom;
        }
        cJSON_AddItemToObject(parent, leaf, v);
    }
    return root;
oom:
    cJSON_Delete(root);
    return NULL;
}

char *tb_config_canonical_json(const tb_run_config *cfg)
{
    cJSON *tree = tb_config_to_json(cfg);
    if (!tree)
        return NULL;
    char *s = tb_json_canonical(tree);
    cJSON_Delete(tree);
    return s;
}

int tb_config_hash(const tb_run_config *cfg, char hex[65])
{
    char *s = tb_config_canonical_json(cfg);
    if (!s)
        return tb_fail(TB_ERR_NOMEM, "out of memory writing the canonical run config");
    tb_sha256_hex(s, strlen(s), hex);
    free(s);
    return TB_OK;
}

int tb_config_get(const tb_run_config *cfg, const char *key, cJSON **out)
{
    *out = NULL;
    if (!tb_config_find_key(key)) {
        char hint[768];
        tb_config_suggest(key, hint, sizeof hint);
        return tb_fail(TB_ERR_INVALID, "unknown key '%s'%s", key, hint);
    }
    cJSON *tree = tb_config_to_json(cfg);
    if (!tree)
        return tb_fail(TB_ERR_NOMEM, "out of memory reading config key %s", key);
    const char *leaf = NULL;
    cJSON *parent = parent_object(tree, key, &leaf);
    cJSON *v = parent ? cJSON_GetObjectItemCaseSensitive(parent, leaf) : NULL;
    if (!v) /* a key under a disabled tricks.distill: reads as null */
        *out = cJSON_CreateNull();
    else
        *out = cJSON_DetachItemViaPointer(parent, v);
    cJSON_Delete(tree);
    return *out ? TB_OK : tb_fail(TB_ERR_NOMEM, "out of memory reading config key %s", key);
}
