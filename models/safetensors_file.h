/* The safetensors container itself (see safetensors.h for the layout):
 * opening and validating a file, finding tensors, reading their bytes, and
 * writing a file from a list of tensors. Knows nothing about graphs. */
#ifndef TB_SAFETENSORS_FILE_H
#define TB_SAFETENSORS_FILE_H

#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TB_ST_MAX_DIMS 8
#define TB_ST_MAX_HEADER (100u << 20) /* the reference implementation's limit: 100 MB */

typedef struct tb_st_tensor {
    char *name;
    char dtype[8];            /* "F32", "F16", "BF16", "I64", ... */
    int ndim;
    int64_t shape[TB_ST_MAX_DIMS];
    int64_t begin, end;       /* byte offsets inside the data section */
} tb_st_tensor;

typedef struct tb_st_file {
    FILE *f;
    const char *path;         /* the caller's string, for messages */
    int64_t data_start;       /* 8 + header length */
    int64_t data_size;
    tb_st_tensor *tensors;    /* in header order */
    int n;
} tb_st_file;

/* Bytes per element of a safetensors dtype name; 0 when unknown. */
size_t tb_st_dtype_size(const char *dtype);

/* Opens and validates `path`: header length within the file, JSON object,
 * every tensor with a known dtype, a shape and data_offsets that match the
 * shape, tensors tiling the data section exactly. Errors are TB_ERR_DATA
 * (TB_ERR_MISSING when the file cannot be opened) and name the file. */
int tb_st_open(tb_st_file *sf, const char *path);
void tb_st_close(tb_st_file *sf);
const tb_st_tensor *tb_st_find(const tb_st_file *sf, const char *name);
/* Reads a tensor's raw bytes (end - begin of them) into dst. */
int tb_st_read(tb_st_file *sf, const tb_st_tensor *t, void *dst);

/* Writing: describe the tensors (begin/end are filled in), then stream their
 * bytes in the same order. */
typedef struct tb_st_writer {
    FILE *f;
    const char *path;
    int64_t written, expected;
} tb_st_writer;

int tb_st_write_begin(tb_st_writer *w, FILE *f, const char *path, tb_st_tensor *tensors, int n);
int tb_st_write_data(tb_st_writer *w, const void *data, size_t bytes);
int tb_st_write_end(tb_st_writer *w);

/* "[64,3,7,7]" */
char *tb_st_shape_str(const int64_t *shape, int ndim, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
