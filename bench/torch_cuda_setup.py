"""CUDA settings shared by the PyTorch references (bench/pytorch_*.py), so that
they run as trickbench runs on a GPU: cuDNN times each convolution's
algorithms and keeps the fastest (trickbench runs cudnnFind when it builds
the graph; the shapes are static, and the warm-up steps absorb the search),
and f32 convolutions and GEMMs may use TF32 (trickbench's default on CUDA).
configure() returns what it set, for the JSON line."""


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
    """Peak bytes the caching allocator held on the GPU, for the JSON line."""
    if device != "cuda":
        return {}
    return {"peak_gpu_bytes": torch.cuda.max_memory_reserved()}
