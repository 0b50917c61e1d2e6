/* The training-state file (see resume.h for what is in it and why). */
#include "harness/train/resume.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include <zlib.h>

#include "kernels/error.h"
#include "models/safetensors_file.h"

#define CRC_NAME "trickbench.crc32"

/* The host-side part of the state, in the layout of its tensors. */
typedef struct host_state {
    int64_t version;
    uint8_t hash[64];
    uint8_t device[TB_RESUME_DEVICE_LEN];
    int64_t loop[3];          /* epoch, epochs, steps_per_epoch */
    double last_eval[3];
    int64_t counters[3];      /* bn num_batches_tracked, training forwards (dropout step), EMA updates */
    double scale;             /* loss scaler */
    int64_t scaler[3];        /* good steps, steps, skipped */
    double *seconds, *ips;    /* [epochs] */
    uint32_t crc;
} host_state;

/* One tensor of the file: host bytes or a device f32 tensor. */
typedef struct entry {
    tb_st_tensor t;
    char name[TB_NAME_LEN + 16];
    void *host;
    tb_tensor *dev;
} entry;

typedef struct plan {
    entry *e;
    int n, cap;
    size_t largest_dev;       /* bytes of the largest device tensor (the staging buffer) */
} plan;

static int push(plan *p, const char *name, const char *dtype, int ndim, const int64_t *shape, void *host,
                tb_tensor *dev)
{
    if (p->n == p->cap) {
        int ncap = p->cap ? 2 * p->cap : 64;
        entry *e = realloc(p->e, sizeof *e * (size_t)ncap);
        TB_CHECK(e != NULL, TB_ERR_NOMEM, "training state: out of memory");
        p->e = e;
        p->cap = ncap;
    }
    entry *e = &p->e[p->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->t.dtype, sizeof e->t.dtype, "%s", dtype);
    e->t.ndim = ndim;
    for (int d = 0; d < ndim; d++)
        e->t.shape[d] = shape[d];
    e->host = host;
    e->dev = dev;
    return TB_OK;
}

static int push_host(plan *p, const char *name, const char *dtype, int64_t count, void *host)
{
    /* count 0: a scalar (shape []) */
    return push(p, name, dtype, count ? 1 : 0, &count, host, NULL);
}

static int push_dev(plan *p, const char *name, tb_tensor *t)
{
    TB_CHECK(t->dtype == TB_F32 && t->data, TB_ERR_INTERNAL, "training state: tensor '%s' is %s, not allocated f32",
             name, tb_dtype_name(t->dtype));
    size_t bytes = tb_nbytes(t);
    p->largest_dev = bytes > p->largest_dev ? bytes : p->largest_dev;
    return push(p, name, "F32", t->ndim, t->shape, NULL, t);
}

/* Every tensor of the state of g and s, in file order; the CRC is last. */
static int plan_of(plan *p, host_state *h, int epochs, tb_graph *g, const tb_step *s)
{
    memset(p, 0, sizeof *p);
    TB_TRY(push_host(p, "trickbench.state_version", "I64", 0, &h->version));
    TB_TRY(push_host(p, "trickbench.config_hash", "U8", 64, h->hash));
    TB_TRY(push_host(p, "trickbench.device", "U8", TB_RESUME_DEVICE_LEN, h->device));
    TB_TRY(push_host(p, "loop.epoch_epochs_steps", "I64", 3, h->loop));
    TB_TRY(push_host(p, "loop.last_eval", "F64", 3, h->last_eval));
    TB_TRY(push_host(p, "loop.epoch_seconds", "F64", epochs, h->seconds));
    TB_TRY(push_host(p, "loop.epoch_images_per_sec", "F64", epochs, h->ips));
    TB_TRY(push_host(p, "counters.batches_forwards_ema", "I64", 3, h->counters));
    TB_TRY(push_host(p, "loss_scaler.scale", "F64", 0, &h->scale));
    TB_TRY(push_host(p, "loss_scaler.good_steps_skipped", "I64", 3, h->scaler));
    char name[TB_NAME_LEN + 16];
    for (int gi = 0; gi < 2; gi++) {
        tb_param_group *grp = tb_graph_group(g, gi);
        if (!grp)
            continue;
        snprintf(name, sizeof name, "group%d.master", gi);
        TB_TRY(push_dev(p, name, &grp->master));
        snprintf(name, sizeof name, "group%d.momentum", gi);
        TB_TRY(push_dev(p, name, &grp->momentum));
    }
    for (int b = 0; b < tb_graph_n_buffers(g); b++) {
        tb_buffer *buf = tb_graph_buffer(g, b);
        snprintf(name, sizeof name, "buffer.%s", buf->name);
        TB_TRY(push_dev(p, name, &buf->t));
    }
    for (int i = 0; s->have_ema && i < s->ema.count; i++) {
        snprintf(name, sizeof name, "ema.%d", i);
        TB_TRY(push_dev(p, name, &s->ema.shadow[i]));
    }
    TB_TRY(push_host(p, CRC_NAME, "U32", 0, &h->crc));
    for (int i = 0; i < p->n; i++)
        p->e[i].t.name = p->e[i].name;
    return TB_OK;
}

static size_t entry_bytes(const entry *e)
{
    size_t n = tb_st_dtype_size(e->t.dtype);
    for (int d = 0; d < e->t.ndim; d++)
        n *= (size_t)e->t.shape[d];
    return n;
}

static int host_alloc(host_state *h, int epochs)
{
    memset(h, 0, sizeof *h);
    h->seconds = calloc((size_t)epochs, sizeof(double));
    h->ips = calloc((size_t)epochs, sizeof(double));
    TB_CHECK(h->seconds && h->ips, TB_ERR_NOMEM, "training state: out of memory");
    return TB_OK;
}

static void host_free(host_state *h)
{
    free(h->seconds);
    free(h->ips);
}

/* ---------------------------------------------------------------- saving */

static void fill_host(host_state *h, const char *hash, const char *device, tb_graph *g, const tb_step *s,
                      const tb_resume_progress *p)
{
    h->version = TB_RESUME_VERSION;
    memcpy(h->hash, hash, 64);
    snprintf((char *)h->device, sizeof h->device, "%s", device);
    h->loop[0] = p->epoch;
    h->loop[1] = p->epochs;
    h->loop[2] = p->steps_per_epoch;
    memcpy(h->last_eval, p->last_eval, sizeof h->last_eval);
    memcpy(h->seconds, p->epoch_seconds, sizeof(double) * (size_t)p->epochs);
    memcpy(h->ips, p->epoch_ips, sizeof(double) * (size_t)p->epochs);
    h->counters[0] = tb_graph_bn_batches_tracked(g);
    h->counters[1] = (int64_t)tb_graph_step(g);
    h->counters[2] = s->have_ema ? s->ema.updates : 0;
    h->scale = s->scaler.scale;
    h->scaler[0] = s->scaler.good_steps;
    h->scaler[1] = s->scaler.steps;
    h->scaler[2] = s->scaler.skipped;
}

static int write_entries(FILE *f, const char *path, tb_backend *be, plan *pl, host_state *h)
{
    tb_st_tensor *ts = malloc(sizeof *ts * (size_t)pl->n);
    void *stage = malloc(pl->largest_dev ? pl->largest_dev : 1);
    int rc = ts && stage ? TB_OK : tb_fail(TB_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; rc == TB_OK && i < pl->n; i++)
        ts[i] = pl->e[i].t;
    tb_st_writer w;
    if (rc == TB_OK)
        rc = tb_st_write_begin(&w, f, path, ts, pl->n);
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int i = 0; rc == TB_OK && i < pl->n; i++) {
        const entry *e = &pl->e[i];
        size_t bytes = entry_bytes(e);
        const void *src = e->host;
        if (e->dev) {
            rc = tb_download(be, stage, e->dev);
            src = stage;
        }
        if (rc == TB_OK && i == pl->n - 1)
            h->crc = (uint32_t)crc; /* the CRC covers every tensor before it */
        if (rc == TB_OK)
            crc = crc32_z(crc, src, bytes);
        if (rc == TB_OK)
            rc = tb_st_write_data(&w, src, bytes);
    }
    if (rc == TB_OK)
        rc = tb_st_write_end(&w);
    free(ts);
    free(stage);
    return rc;
}

static int write_file(const char *path, const char *tmp, tb_backend *be, plan *pl, host_state *h)
{
    FILE *f = fopen(tmp, "wb");
    TB_CHECK(f != NULL, TB_ERR_IO, "%s: cannot create the training state: %s", tmp, strerror(errno));
    int rc = write_entries(f, path, be, pl, h);
    /* on disk before the rename: a crash leaves the old file or the new one, never half of one */
    if (rc == TB_OK && (fflush(f) != 0 || fsync(fileno(f)) != 0))
        rc = tb_fail(TB_ERR_IO, "%s: cannot write the training state: %s", tmp, strerror(errno));
    if (fclose(f) != 0 && rc == TB_OK)
        rc = tb_fail(TB_ERR_IO, "%s: cannot write the training state: %s", tmp, strerror(errno));
    if (rc == TB_OK && rename(tmp, path) != 0)
        rc = tb_fail(TB_ERR_IO, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
    if (rc != TB_OK)
        remove(tmp);
    return rc;
}

int tb_resume_save(const char *path, const char *hash, const char *device, tb_graph *g, const tb_step *s,
                   const tb_resume_progress *p)
{
    char tmp[4096];
    TB_CHECK(snprintf(tmp, sizeof tmp, "%s.tmp", path) < (int)sizeof tmp, TB_ERR_INVALID,
             "training state path is too long: %s", path);
    TB_CHECK(strlen(hash) == 64, TB_ERR_INTERNAL, "training state: a config hash of %zu characters",
             strlen(hash));
    TB_CHECK(p->epoch >= 1 && p->epoch <= p->epochs, TB_ERR_INTERNAL, "training state: epoch %d of %d", p->epoch,
             p->epochs);
    host_state h;
    plan pl = {0};
    int rc = host_alloc(&h, p->epochs);
    if (rc == TB_OK) {
        fill_host(&h, hash, device, g, s, p);
        rc = plan_of(&pl, &h, p->epochs, g, s);
    }
    if (rc == TB_OK)
        rc = write_file(path, tmp, tb_graph_backend(g), &pl, &h);
    free(pl.e);
    host_free(&h);
    return rc;
}

/* --------------------------------------------------------------- loading */

static int check_entry(tb_st_file *sf, const entry *e, const tb_st_tensor **out)
{
    const tb_st_tensor *t = tb_st_find(sf, e->name);
    TB_CHECK(t != NULL, TB_ERR_DATA, "%s: no tensor '%s' (not a training state of this model and trainer)",
             sf->path, e->name);
    char want[96], got[96];
    if (strcmp(t->dtype, e->t.dtype) || t->ndim != e->t.ndim ||
        (t->ndim && memcmp(t->shape, e->t.shape, sizeof(int64_t) * (size_t)t->ndim)))
        return tb_fail(TB_ERR_DATA, "%s: tensor '%s' is %s %s, this run needs %s %s", sf->path, e->name, t->dtype,
                       tb_st_shape_str(t->shape, t->ndim, got, sizeof got), e->t.dtype,
                       tb_st_shape_str(e->t.shape, e->t.ndim, want, sizeof want));
    *out = t;
    return TB_OK;
}

static int read_host_entry(tb_st_file *sf, const entry *e)
{
    const tb_st_tensor *t;
    TB_TRY(check_entry(sf, e, &t));
    return tb_st_read(sf, t, e->host);
}

static const entry *find_entry(const plan *pl, const char *name)
{
    for (int i = 0; i < pl->n; i++)
        if (!strcmp(pl->e[i].name, name))
            return &pl->e[i];
    return NULL;
}

/* The identity first, for the clearest message: version, then run hash. */
static int check_identity(tb_st_file *sf, const plan *pl, const host_state *h, const char *hash)
{
    TB_TRY(read_host_entry(sf, find_entry(pl, "trickbench.state_version")));
    TB_CHECK(h->version == TB_RESUME_VERSION, TB_ERR_DATA, "%s: training state format %" PRId64 ", this trickbench "
             "reads format %d", sf->path, h->version, TB_RESUME_VERSION);
    TB_TRY(read_host_entry(sf, find_entry(pl, "trickbench.config_hash")));
    TB_CHECK(!memcmp(h->hash, hash, 64), TB_ERR_DATA, "%s: the training state of run %.12s, not of this run %.12s",
             sf->path, (const char *)h->hash, hash);
    return TB_OK;
}

/* Every tensor of the plan, with its dtype and shape, and nothing else. */
static int check_all(tb_st_file *sf, const plan *pl)
{
    for (int i = 0; i < pl->n; i++) {
        const tb_st_tensor *t;
        TB_TRY(check_entry(sf, &pl->e[i], &t));
    }
    TB_CHECK(sf->n == pl->n, TB_ERR_DATA, "%s: %d tensors, this run's state has %d", sf->path, sf->n, pl->n);
    return TB_OK;
}

/* CRC-32 of the data bytes before the CRC tensor, which must come last. */
static int check_crc(tb_st_file *sf, host_state *h)
{
    const tb_st_tensor *c = tb_st_find(sf, CRC_NAME);
    TB_CHECK(c && c->end == sf->data_size, TB_ERR_DATA, "%s: the checksum is not the last tensor", sf->path);
    TB_TRY(tb_st_read(sf, c, &h->crc));
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = malloc(CHUNK);
    TB_CHECK(buf != NULL, TB_ERR_NOMEM, "%s: out of memory", sf->path);
    uLong crc = crc32(0L, Z_NULL, 0);
    int rc = fseeko(sf->f, (off_t)sf->data_start, SEEK_SET) == 0
                 ? TB_OK
                 : tb_fail(TB_ERR_IO, "%s: cannot seek: %s", sf->path, strerror(errno));
    for (int64_t left = c->begin; rc == TB_OK && left > 0;) {
        size_t want = left < CHUNK ? (size_t)left : (size_t)CHUNK;
        if (fread(buf, 1, want, sf->f) != want)
            rc = tb_fail(TB_ERR_DATA, "%s: cannot read the data for the checksum", sf->path);
        else
            crc = crc32_z(crc, buf, want);
        left -= (int64_t)want;
    }
    free(buf);
    TB_TRY(rc);
    TB_CHECK((uint32_t)crc == h->crc, TB_ERR_DATA, "%s: checksum mismatch (stored %08" PRIx32 ", data %08" PRIx32
             "): the file is damaged", sf->path, h->crc, (uint32_t)crc);
    return TB_OK;
}

/* The host tensors, then whether they fit this run. */
static int check_host(tb_st_file *sf, const plan *pl, host_state *h, const tb_resume_progress *p)
{
    for (int i = 0; i < pl->n; i++)
        if (pl->e[i].host)
            TB_TRY(read_host_entry(sf, &pl->e[i]));
    h->device[sizeof h->device - 1] = '\0';
    TB_CHECK(h->loop[1] == p->epochs && h->loop[2] == p->steps_per_epoch, TB_ERR_DATA,
             "%s: written for %" PRId64 " epochs of %" PRId64 " steps, this run has %d of %" PRId64
             " (has the dataset changed?)", sf->path, h->loop[1], h->loop[2], p->epochs, p->steps_per_epoch);
    TB_CHECK(h->loop[0] >= 1 && h->loop[0] <= p->epochs, TB_ERR_DATA, "%s: epoch %" PRId64 " is not in 1..%d",
             sf->path, h->loop[0], p->epochs);
    TB_CHECK(isfinite(h->scale) && h->scale > 0 && h->counters[0] >= 0 && h->counters[2] >= 0 &&
                 h->scaler[0] >= 0 && h->scaler[1] >= 0 && h->scaler[2] >= 0,
             TB_ERR_DATA, "%s: invalid counters or loss scale", sf->path);
    return TB_OK;
}

/* From here on the graph changes: any error is fatal for the run. */
static int apply(tb_st_file *sf, const plan *pl, const host_state *h, tb_graph *g, tb_step *s,
                 tb_resume_progress *p)
{
    void *stage = malloc(pl->largest_dev ? pl->largest_dev : 1);
    TB_CHECK(stage != NULL, TB_ERR_NOMEM, "%s: out of memory", sf->path);
    int rc = TB_OK;
    for (int i = 0; rc == TB_OK && i < pl->n; i++) {
        const entry *e = &pl->e[i];
        if (!e->dev)
            continue;
        rc = tb_st_read(sf, tb_st_find(sf, e->name), stage);
        if (rc == TB_OK)
            rc = tb_upload(tb_graph_backend(g), e->dev, stage);
    }
    free(stage);
    TB_TRY(rc);
    tb_graph_set_bn_batches_tracked(g, h->counters[0]);
    tb_graph_set_step(g, (uint64_t)h->counters[1]); /* the dropout mask stream goes on where it was */
    if (s->have_ema)
        s->ema.updates = h->counters[2];
    s->scaler.scale = h->scale;
    s->scaler.good_steps = h->scaler[0];
    s->scaler.steps = h->scaler[1];
    s->scaler.skipped = h->scaler[2];
    p->epoch = (int)h->loop[0];
    memcpy(p->last_eval, h->last_eval, sizeof p->last_eval);
    memcpy(p->epoch_seconds, h->seconds, sizeof(double) * (size_t)p->epochs);
    memcpy(p->epoch_ips, h->ips, sizeof(double) * (size_t)p->epochs);
    /* the low-precision copies are the masters converted, as after an SGD step */
    TB_TRY(tb_graph_sync_params(g));
    return tb_synchronize(tb_graph_backend(g));
}

/* Every check that can reject the file without changing anything. */
static int validate(tb_st_file *sf, const plan *pl, host_state *h, const char *hash, const tb_resume_progress *p)
{
    TB_TRY(check_identity(sf, pl, h, hash));
    TB_TRY(check_all(sf, pl));
    TB_TRY(check_crc(sf, h));
    return check_host(sf, pl, h, p);
}

int tb_resume_load(const char *path, const char *hash, tb_graph *g, tb_step *s, tb_resume_progress *p,
                   char *device, size_t device_size, tb_resume_outcome *outcome)
{
    *outcome = TB_RESUME_NONE;
    if (device && device_size)
        device[0] = '\0';
    if (access(path, F_OK) != 0 && errno == ENOENT)
        return TB_OK;
    *outcome = TB_RESUME_REJECTED;
    TB_CHECK(strlen(hash) == 64, TB_ERR_INTERNAL, "training state: a config hash of %zu characters",
             strlen(hash));
    host_state h;
    plan pl = {0};
    tb_st_file sf;
    bool open = false;
    int rc = host_alloc(&h, p->epochs);
    if (rc == TB_OK)
        rc = plan_of(&pl, &h, p->epochs, g, s);
    if (rc == TB_OK)
        open = (rc = tb_st_open(&sf, path)) == TB_OK;
    if (rc == TB_OK)
        rc = validate(&sf, &pl, &h, hash, p);
    if (rc != TB_OK) {
        /* a rejection, not a failure: the caller starts afresh with tb_errmsg() as the reason */
        if (open)
            tb_st_close(&sf);
        free(pl.e);
        host_free(&h);
        return rc == TB_ERR_NOMEM || rc == TB_ERR_INTERNAL ? rc : TB_OK;
    }
    if (device && device_size)
        snprintf(device, device_size, "%s", (const char *)h.device);
    rc = apply(&sf, &pl, &h, g, s, p);
    if (rc == TB_OK)
        *outcome = TB_RESUME_LOADED;
    tb_st_close(&sf);
    free(pl.e);
    host_free(&h);
    return rc;
}

int tb_resume_peek(const char *path, const char *hash)
{
    tb_st_file sf;
    if (strlen(hash) != 64 || tb_st_open(&sf, path) != TB_OK) {
        tb_err_clear();
        return 0;
    }
    int64_t version = 0, loop[3] = {0, 0, 0};
    uint8_t file_hash[64];
    const tb_st_tensor *v = tb_st_find(&sf, "trickbench.state_version");
    const tb_st_tensor *hh = tb_st_find(&sf, "trickbench.config_hash");
    const tb_st_tensor *l = tb_st_find(&sf, "loop.epoch_epochs_steps");
    bool ok = v && hh && l && !strcmp(v->dtype, "I64") && v->end - v->begin == 8 && !strcmp(hh->dtype, "U8") &&
              hh->end - hh->begin == 64 && !strcmp(l->dtype, "I64") && l->end - l->begin == 24 &&
              tb_st_read(&sf, v, &version) == TB_OK && tb_st_read(&sf, hh, file_hash) == TB_OK &&
              tb_st_read(&sf, l, loop) == TB_OK;
    tb_st_close(&sf);
    tb_err_clear();
    if (!ok || version != TB_RESUME_VERSION || memcmp(file_hash, hash, 64) || loop[0] < 1 || loop[0] > loop[1])
        return 0;
    return (int)loop[0];
}

int tb_resume_remove(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    remove(tmp);
    if (remove(path) != 0 && errno != ENOENT)
        return tb_fail(TB_ERR_IO, "%s: cannot delete the training state: %s", path, strerror(errno));
    return TB_OK;
}

bool tb_resume_path_for(const char *checkpoint_path, char *buf, size_t size)
{
    static const char ext[] = ".safetensors";
    size_t len = strlen(checkpoint_path), el = sizeof ext - 1;
    if (len > el && !strcmp(checkpoint_path + len - el, ext))
        len -= el;
    int n = snprintf(buf, size, "%.*s.state%s", (int)len, checkpoint_path, ext);
    return n >= 0 && (size_t)n < size;
}
