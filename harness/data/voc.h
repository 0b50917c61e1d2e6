/* Internal to harness/data: the PASCAL VOC files behind det_dataset.h.
 *
 * Annotation XML (libxml2, no network, no entity expansion):
 *   annotation/size/{width,height}   required, positive integers
 *   annotation/size/depth            ignored
 *   annotation/object (any number), each with
 *     name                           required, one of the caller's classes
 *                                    (surrounding white space ignored)
 *     bndbox/{xmin,ymin,xmax,ymax}   required numbers, 1-based inclusive:
 *                                    1 <= xmin <= xmax <= width, same for y
 *     difficult                      optional 0/1 (absent = 0, as GluonCV)
 *     truncated, pose, part, ...     ignored (a part's own bndbox too)
 * Anything else wrong (not XML, a missing or non-numeric field, an unknown
 * class, a box outside the image or inverted) is TB_ERR_DATA with a message
 * naming the file, the object index (0-based, in file order) and the field.
 * A build without libxml2 (meson -Dlibxml2=disabled, or none usable found)
 * fails every annotation with TB_ERR_UNSUPPORTED naming the file and saying
 * so; image set files need no libxml2.
 */
#ifndef TB_VOC_H
#define TB_VOC_H

#include <stdint.h>

#include "harness/data/det_dataset.h"

typedef struct tb_voc_annotation {
    int width, height;
    tb_det_object *objects; /* count entries, malloc'd */
    int count;
} tb_voc_annotation;

/* Parses one annotation file; boxes converted as det_dataset.h says. */
int tb_voc_parse_annotation(const char *path, const char *const *class_names, int classes, tb_voc_annotation *out);
void tb_voc_annotation_free(tb_voc_annotation *a);

/* Reads an image set file: the first word of every non-empty line.
 * *ids is one malloc'd block of n pointers followed by the strings. */
int tb_voc_read_image_set(const char *path, char ***ids, int64_t *n);

#endif
