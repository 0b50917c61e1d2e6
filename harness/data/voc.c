/* PASCAL VOC annotation XML and image set files (see voc.h). */
#include "harness/data/voc.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tb_build_config.h"
#if HAVE_LIBXML2
#include <libxml/parser.h>
#include <libxml/tree.h>
#endif

#include "harness/data/dataset_impl.h"
#include "kernels/error.h"

/* Longest text of a field we accept (class names, numbers). */
#define VOC_FIELD_MAX 256

void tb_voc_annotation_free(tb_voc_annotation *a)
{
    free(a->objects);
    memset(a, 0, sizeof *a);
}

#if HAVE_LIBXML2
/* The first child element of node called name, or NULL. */
static xmlNode *child(const xmlNode *node, const char *name)
{
    for (xmlNode *c = node ? node->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, name) == 0)
            return c;
    return NULL;
}

/* The text of element `name` under node, trimmed, into buf; false when the
 * element is absent. Text longer than the buffer is cut (then it fails to
 * parse or match, which reports the field). */
static bool field_text(const xmlNode *node, const char *name, char *buf, size_t cap)
{
    xmlNode *e = child(node, name);
    if (!e)
        return false;
    xmlChar *s = xmlNodeGetContent(e);
    const char *t = s ? (const char *)s : "";
    while (isspace((unsigned char)*t))
        t++;
    size_t n = strlen(t);
    while (n > 0 && isspace((unsigned char)t[n - 1]))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, t, n);
    buf[n] = '\0';
    xmlFree(s);
    return true;
}

/* A required number field; `where` names the object for messages. */
static int number_field(const char *path, const char *where, const xmlNode *node, const char *name, double *out)
{
    char buf[VOC_FIELD_MAX];
    TB_CHECK(field_text(node, name, buf, sizeof buf), TB_ERR_DATA, "%s: %smissing <%s>", path, where, name);
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    TB_CHECK(buf[0] && *end == '\0' && errno == 0 && isfinite(v), TB_ERR_DATA, "%s: %s<%s> is not a number: '%s'",
             path, where, name, buf);
    *out = v;
    return TB_OK;
}

static int parse_size(const char *path, const xmlNode *root, tb_voc_annotation *a)
{
    const xmlNode *size = child(root, "size");
    TB_CHECK(size, TB_ERR_DATA, "%s: missing <size>", path);
    double w, h;
    TB_TRY(number_field(path, "size: ", size, "width", &w));
    TB_TRY(number_field(path, "size: ", size, "height", &h));
    TB_CHECK(w >= 1 && h >= 1 && w <= 65535 && h <= 65535 && w == floor(w) && h == floor(h), TB_ERR_DATA,
             "%s: size %gx%g (width x height) is not a positive integer size", path, w, h);
    a->width = (int)w;
    a->height = (int)h;
    return TB_OK;
}

static int parse_object(const char *path, const xmlNode *obj, int index, const char *const *class_names,
                        int classes, const tb_voc_annotation *a, tb_det_object *out)
{
    char where[64];
    snprintf(where, sizeof where, "object %d: ", index);
    char name[VOC_FIELD_MAX];
    TB_CHECK(field_text(obj, "name", name, sizeof name), TB_ERR_DATA, "%s: %smissing <name>", path, where);
    out->label = -1;
    for (int k = 0; k < classes; k++)
        if (strcmp(name, class_names[k]) == 0)
            out->label = k;
    TB_CHECK(out->label >= 0, TB_ERR_DATA, "%s: %sunknown class '%s' (%d classes, e.g. '%s')", path, where, name,
             classes, classes > 0 ? class_names[0] : "");
    char flag[VOC_FIELD_MAX];
    out->difficult = 0;
    if (field_text(obj, "difficult", flag, sizeof flag)) {
        TB_CHECK(strcmp(flag, "0") == 0 || strcmp(flag, "1") == 0, TB_ERR_DATA, "%s: %s<difficult> must be 0 or 1, got '%s'",
                 path, where, flag);
        out->difficult = flag[0] == '1';
    }
    const xmlNode *bb = child(obj, "bndbox");
    TB_CHECK(bb, TB_ERR_DATA, "%s: %smissing <bndbox>", path, where);
    double xmin, ymin, xmax, ymax;
    TB_TRY(number_field(path, where, bb, "xmin", &xmin));
    TB_TRY(number_field(path, where, bb, "ymin", &ymin));
    TB_TRY(number_field(path, where, bb, "xmax", &xmax));
    TB_TRY(number_field(path, where, bb, "ymax", &ymax));
    TB_CHECK(xmin <= xmax && ymin <= ymax, TB_ERR_DATA, "%s: %sinverted box (xmin %g, ymin %g, xmax %g, ymax %g)", path,
             where, xmin, ymin, xmax, ymax);
    TB_CHECK(xmin >= 1 && ymin >= 1 && xmax <= a->width && ymax <= a->height, TB_ERR_DATA,
             "%s: %sbox (xmin %g, ymin %g, xmax %g, ymax %g) is outside the %dx%d image (1-based, inclusive)", path,
             where, xmin, ymin, xmax, ymax, a->width, a->height);
    /* 1-based inclusive pixel indices -> continuous [x1, x2) */
    out->box[0] = (float)(xmin - 1);
    out->box[1] = (float)(ymin - 1);
    out->box[2] = (float)xmax;
    out->box[3] = (float)ymax;
    return TB_OK;
}

static int parse_doc(const char *path, const xmlDoc *doc, const char *const *class_names, int classes,
                     tb_voc_annotation *a)
{
    const xmlNode *root = xmlDocGetRootElement(doc);
    TB_CHECK(root && strcmp((const char *)root->name, "annotation") == 0, TB_ERR_DATA,
             "%s: the root element is <%s>, expected <annotation>", path, root ? (const char *)root->name : "");
    TB_TRY(parse_size(path, root, a));
    int n = 0;
    for (const xmlNode *c = root->children; c; c = c->next)
        n += c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, "object") == 0;
    a->objects = calloc((size_t)(n > 0 ? n : 1), sizeof *a->objects);
    TB_CHECK(a->objects, TB_ERR_NOMEM, "%s: out of memory for %d objects", path, n);
    for (const xmlNode *c = root->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, "object") == 0) {
            TB_TRY(parse_object(path, c, a->count, class_names, classes, a, &a->objects[a->count]));
            a->count++;
        }
    return TB_OK;
}

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

/* libxml2 wants one initialisation before any (possibly concurrent) use. */
static void xml_init(void) { xmlInitParser(); }

int tb_voc_parse_annotation(const char *path, const char *const *class_names, int classes, tb_voc_annotation *out)
{
    memset(out, 0, sizeof *out);
    pthread_once(&xml_once, xml_init);
    uint8_t *bytes = NULL;
    size_t cap = 0, size = 0;
    int rc = tb_read_file(path, &bytes, &cap, &size);
    if (rc != TB_OK) {
        free(bytes);
        return rc;
    }
    TB_CHECK(size <= INT32_MAX, TB_ERR_DATA, "%s: %zu bytes is too large for an annotation", path, size);
    xmlParserCtxt *ctx = xmlNewParserCtxt();
    if (!ctx) {
        free(bytes);
        return tb_fail(TB_ERR_NOMEM, "%s: cannot create an XML parser", path);
    }
    /* no network, no error printing (we report), no entity expansion */
    xmlDoc *doc = xmlCtxtReadMemory(ctx, (const char *)bytes, (int)size, path, NULL,
                                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) {
        const xmlError *e = xmlCtxtGetLastError(ctx);
        char msg[512];
        snprintf(msg, sizeof msg, "%s", e && e->message ? e->message : "unknown error");
        size_t len = strlen(msg);
        while (len > 0 && isspace((unsigned char)msg[len - 1])) /* libxml2's messages end with a newline */
            msg[--len] = '\0';
        rc = tb_fail(TB_ERR_DATA, "%s: malformed XML (line %d): %s", path, e ? e->line : 0, msg);
    } else {
        rc = parse_doc(path, doc, class_names, classes, out);
        xmlFreeDoc(doc);
    }
    xmlFreeParserCtxt(ctx);
    free(bytes);
    if (rc != TB_OK)
        tb_voc_annotation_free(out);
    return rc;
}

#else
int tb_voc_parse_annotation(const char *path, const char *const *class_names, int classes, tb_voc_annotation *out)
{
    (void)class_names;
    (void)classes;
    memset(out, 0, sizeof *out);
    return tb_fail(TB_ERR_UNSUPPORTED,
                   "%s: this trickbench was built without libxml2, which reads VOC annotation XML; "
                   "install libxml2-dev (Debian) and rebuild (meson setup --reconfigure BUILD -Dlibxml2=enabled)",
                   path);
}
#endif

int tb_voc_read_image_set(const char *path, char ***ids, int64_t *n)
{
    *ids = NULL;
    *n = 0;
    uint8_t *buf = NULL;
    size_t cap = 0, size = 0;
    int rc = tb_read_file(path, &buf, &cap, &size);
    if (rc != TB_OK) {
        free(buf);
        return rc;
    }
    /* pass 0 counts the ids and their bytes, pass 1 copies them */
    int64_t count = 0;
    size_t chars = 0;
    char **out = NULL;
    char *text = NULL;
    for (int pass = 0; pass < 2; pass++) {
        int64_t k = 0;
        for (size_t p = 0; p < size;) {
            while (p < size && isspace(buf[p]))
                p++;
            size_t q = p;
            while (q < size && !isspace(buf[q]))
                q++;
            if (q > p) {
                if (pass == 1) {
                    memcpy(text, buf + p, q - p);
                    text[q - p] = '\0';
                    out[k] = text;
                    text += q - p + 1;
                }
                k++;
                chars += pass == 0 ? q - p + 1 : 0;
            }
            while (q < size && buf[q] != '\n') /* the rest of the line (class files: "id  1") */
                q++;
            p = q;
        }
        if (pass == 0) {
            count = k;
            out = malloc((size_t)count * sizeof *out + chars + 1);
            if (!out) {
                free(buf);
                return tb_fail(TB_ERR_NOMEM, "%s: out of memory for %lld ids", path, (long long)count);
            }
            text = (char *)(out + count);
        }
    }
    free(buf);
    *ids = out;
    *n = count;
    return TB_OK;
}
