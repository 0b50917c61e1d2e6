/* The table of run-config keys (internal to harness/config*.c): one row per
 * key path with its type, where it lives in tb_run_config, and its valid
 * range or choices. Parsing, overrides, canonical JSON and "did you mean"
 * suggestions are all driven by this one table, so a key added here is
 * parsed, hashed and validated everywhere at once (document it in
 * docs/config.md: a unit test checks that every key is mentioned there). */
#ifndef TB_CONFIG_KEYS_H
#define TB_CONFIG_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "harness/config.h"

struct cJSON;

typedef enum tb_key_kind {
    TB_KEY_SECTION = 0, /* an object of further keys */
    TB_KEY_STRING,      /* free text in a char[size] */
    TB_KEY_CHOICE,      /* one of `choices`, stored as text in a char[size] */
    TB_KEY_ENUM,        /* one of `choices`, stored as its index in an enum (int-sized) */
    TB_KEY_INT,         /* int */
    TB_KEY_INT64,       /* int64_t */
    TB_KEY_UINT64,      /* uint64_t (JSON numbers are doubles: at most 2^53) */
    TB_KEY_DOUBLE,      /* double */
    TB_KEY_FLOAT,       /* float */
    TB_KEY_BOOL,        /* bool */
    TB_KEY_VARIANT,     /* char 'A'..'D', written "A".."D" */
    TB_KEY_STEP_LIST,   /* schedule.step_epochs: int[TB_MAX_STEP_EPOCHS] + count */
    TB_KEY_LOSS_SCALE,  /* a number (static) or "dynamic" */
    TB_KEY_FLOAT_LIST   /* tb_float_list: 1..TB_MAX_LIST numbers in [min, max] */
} tb_key_kind;

enum {
    TB_KEY_MIN_OPEN = 1u << 0, /* value must be > min (else >= min) */
    TB_KEY_MAX_OPEN = 1u << 1, /* value must be < max (else <= max) */
    TB_KEY_NULLABLE = 1u << 2, /* a section that may be null (= off): tricks.distill */
    TB_KEY_DETECTION = 1u << 3, /* exists only when task is detection (not in other runs' JSON) */
    TB_KEY_TRANSFER = 1u << 4,  /* exists only for the detection and segmentation tasks */
    TB_KEY_SEGMENTATION = 1u << 5 /* exists only when task is segmentation */
};

typedef struct tb_config_key {
    const char *path;
    tb_key_kind kind;
    size_t offset;               /* of the value in tb_run_config */
    size_t size;                 /* capacity of a string key */
    double min, max;             /* valid range of numeric keys */
    unsigned flags;
    const char *const *choices;  /* NULL-terminated, for CHOICE and ENUM */
} tb_config_key;

extern const tb_config_key tb_config_keys[];
extern const size_t tb_config_n_keys;

/* Whether key k belongs in cfg (task-specific keys exist only for their task). */
bool tb_config_key_applies(const tb_run_config *cfg, const tb_config_key *k);
/* The value of key k in cfg as JSON (caller deletes; NULL when out of memory). */
struct cJSON *tb_config_key_json(const tb_run_config *cfg, const tb_config_key *k);

/* The row for an exact key path, or NULL. */
const tb_config_key *tb_config_find_key(const char *path);

/* A message fragment " (did you mean 'x'?)" for an unknown path, or the list
 * of valid keys of the enclosing section when nothing is close; "" if neither. */
void tb_config_suggest(const char *path, char *buf, size_t size);

#endif
