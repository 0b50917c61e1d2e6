"""CUDA settings shared by the PyTorch references (bench/pytorch_*.py), so that
they run as trickbench runs on a GPU: cuDNN times each convolution's
algorithms and keeps the fastest (trickbench runs cudnnFind when it builds
the graph; the shapes are static, and the warm-up steps absorb the search),
and f32 convolutions and GEMMs may use TF32 (trickbench's default on CUDA).
configure() returns what it set, for the JSON line."""
import resource


def configure(torch, device):
    if device != "cuda":
        return {}
    torch.backends.cudnn.benchmark = True
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        # PyTorch 2.9 and later: the old allow_tf32 flags are deprecated
        conv.fp32_precision = "tf32"
        torch.backends.cuda.matmul.fp32_precision = "tf32"
    else:
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = True
    return {"cudnn_benchmark": True, "fp32_math": "tf32"}


def peak_memory(torch, device):
    """For the JSON line, called after the timed steps: device_used_bytes, the
    device's total minus its free memory (cudaMemGetInfo: the CUDA context,
    libraries and allocations of this process, and any other's), which is the
    figure trickbench's bench reports under the same key, so compare those two;
    and peak_gpu_bytes, the most the caching allocator held at any time
    (cuDNN's trial workspaces of the warm-up included, the context not);
    and peak_rss_bytes on every device."""
    # the process's peak resident set (Linux reports KiB), as trickbench's
    # peak_rss_bytes: the CPU-side comparison
    rss = {"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    if device != "cuda":
        return rss
    free, total = torch.cuda.mem_get_info()
    return {**rss, "device_used_bytes": total - free, "peak_gpu_bytes": torch.cuda.max_memory_reserved()}
