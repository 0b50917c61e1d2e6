/* Checkpoints in the safetensors format (huggingface/safetensors):
 *
 *   8 bytes   N, little-endian u64: the header length
 *   N bytes   JSON: {"__metadata__": {...}, "name": {"dtype": "F32",
 *             "shape": [k, c, r, s], "data_offsets": [begin, end]}, ...},
 *             padded with spaces to a multiple of 8 bytes
 *   rest      raw little-endian tensor data; the tensors tile it exactly
 *
 * A saved graph is a PyTorch state_dict: parameters with the graph's names
 * (torchvision/timm), conv weights in PyTorch's OIHW layout (the graph keeps
 * OHWI), linear weights {out, in}, and for each BatchNorm its running_mean,
 * running_var (F32) and num_batches_tracked (I64, shape []), in module order.
 * torch's safetensors.torch.load_file + model.load_state_dict(strict=True)
 * accepts it for the matching torchvision/timm model.
 *
 * Loading accepts F32, F16 and BF16 for floating tensors (converted to f32)
 * and checks every name, shape and dtype before touching the graph; all
 * mismatches are reported by name in one error. A truncated or corrupt file is
 * TB_ERR_DATA naming the file and what is wrong.
 */
#ifndef TB_SAFETENSORS_H
#define TB_SAFETENSORS_H

#include "models/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Saves the master weights and BN state of a finalized, allocated graph.
 * Writes `path`.tmp and renames it, so a failed save leaves no partial file. */
int tb_safetensors_save(tb_graph *g, const char *path);

/* Loads every tensor of the graph from `path` (strict: the file must hold
 * exactly the graph's tensors) and syncs the low-precision copies. */
int tb_safetensors_load(tb_graph *g, const char *path);

/* Loads only the graph tensors whose names start with one of `prefixes`
 * (e.g. {"conv1.", "bn1.", "layer"} for a ResNet backbone); file tensors
 * outside the prefixes are ignored, graph tensors outside them are left as
 * they are. Within the prefixes the check is as strict as tb_safetensors_load. */
int tb_safetensors_load_prefixes(tb_graph *g, const char *path, const char *const *prefixes, int n_prefixes);

#ifdef __cplusplus
}
#endif
#endif
