/* JSON helpers shared by the run config, the matrix and the reports:
 * reading a file with line/column syntax errors, canonical serialisation
 * (keys sorted, stable number formatting) for run identities, SHA-256 hex,
 * and the "did you mean" suggestion for unknown keys (edit distance).
 */
#ifndef TB_JSON_UTIL_H
#define TB_JSON_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Reads and parses a JSON file. Errors: TB_ERR_MISSING (no such file),
 * TB_ERR_IO, TB_ERR_INVALID "FILE:LINE:COL: invalid JSON: ..." for syntax. */
int tb_json_load_file(const char *path, cJSON **out);

/* Parses `len` bytes of text; `origin` names the source in messages. */
int tb_json_parse_text(const char *text, size_t len, const char *origin, cJSON **out);

/* 1-based line and column of byte `offset` in `text` (columns count bytes). */
void tb_json_line_col(const char *text, size_t offset, int *line, int *col);

/* Canonical compact JSON of `item`: object keys sorted bytewise at every
 * level, numbers in their shortest round-trip form (integers without a
 * fraction), no whitespace. Returns a malloc'd string, NULL when out of memory. */
char *tb_json_canonical(const cJSON *item);

/* Shortest decimal text that reads back as exactly `v` ("1", "0.1", "1e-05");
 * "null" for NaN/inf, which JSON cannot represent. */
void tb_json_format_number(double v, char *buf, size_t size);

/* Like tb_json_format_number for a float: the shortest text that reads back
 * as the same float (0.3f -> "0.3"). */
void tb_json_format_float(float v, char *buf, size_t size);

/* Compact one-line JSON of `item` for messages, cut to about `max` bytes. */
void tb_json_preview(const cJSON *item, char *buf, size_t size);

/* "a number", "a string", ... for type errors. */
const char *tb_json_type_name(const cJSON *item);

/* The first key that appears twice in object `obj` (cJSON keeps both), or NULL. */
const char *tb_json_duplicate_key(const cJSON *obj);

/* Lowercase hex SHA-256 of `len` bytes (nettle). */
void tb_sha256_hex(const void *data, size_t len, char out[65]);

/* Levenshtein distance between two strings. */
size_t tb_edit_distance(const char *a, const char *b);

/* The candidate nearest to `name` by edit distance, or NULL when none is
 * within max(2, strlen(name) / 3) edits. */
const char *tb_nearest_name(const char *name, const char *const *cands, size_t n);

#ifdef __cplusplus
}
#endif
#endif
