#!/usr/bin/env python3
"""PyTorch reference for `trickbench bench`: the same training step (forward,
softmax cross-entropy, backward, SGD with momentum 0.9, Nesterov, weight
decay 1e-4) on random data, same model, batch, image size, precision and
thread count. Prints images/s (median over repeats after warm-up); --json
prints one object with "images_per_sec".

Models: torchvision resnet18/34/50/101/152 for variant B, timm resnet*d for
variant D, torchvision mobilenet... (not available: use trickbench alone).
--stem small replaces the stem by one 3x3 stride-1 conv and no max pool, as
trickbench's small stem does. channels_last memory format throughout; AMP
(autocast) for fp16/bf16 with a GradScaler for fp16; --compile adds
torch.compile. On CUDA, as trickbench: cuDNN benchmark mode and TF32 for
f32 (bench/torch_cuda_setup.py); the JSON adds peak_gpu_bytes. A benchmark, not a test: nothing in `meson test` uses it.
"""
import argparse
import json
import statistics
import sys
import time

import torch_cuda_setup


def build_model(args, torch, nn):
    name = args.model
    if args.variant in ("A", "C"):
        sys.exit("pytorch_bench: variants A and C have no reference implementation (use B or D)")
    if args.variant == "D":
        import timm
        model = timm.create_model(name + "d", num_classes=args.classes, in_chans=args.channels)
        if args.stem == "small":
            model.conv1 = nn.Conv2d(args.channels, 64, 3, 1, 1, bias=False)
            model.bn1 = nn.BatchNorm2d(64)
            model.maxpool = nn.Identity()
    else:
        import torchvision
        model = getattr(torchvision.models, name)(num_classes=args.classes)
        if args.stem == "small":
            model.conv1 = nn.Conv2d(args.channels, 64, 3, 1, 1, bias=False)
            model.maxpool = nn.Identity()
        elif args.channels != 3:
            model.conv1 = nn.Conv2d(args.channels, 64, 7, 2, 3, bias=False)
    return model


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet50")
    p.add_argument("--variant", default="B")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--image", type=int, default=224)
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--stem", default="auto", choices=["auto", "imagenet", "small"])
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.stem == "auto":
        args.stem = "small" if args.image <= 64 else "imagenet"

    import torch
    import torch.nn as nn
    torch.set_num_threads(args.threads)
    cuda_settings = torch_cuda_setup.configure(torch, args.device)
    dev = torch.device(args.device)
    model = build_model(args, torch, nn).to(dev).to(memory_format=torch.channels_last)
    if args.compile:
        model = torch.compile(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)
    x = torch.randn(args.batch, args.channels, args.image, args.image, device=dev).to(
        memory_format=torch.channels_last)
    y = torch.randint(0, args.classes, (args.batch,), device=dev)
    amp_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(args.precision)
    scaler = torch.amp.GradScaler(args.device) if args.precision == "fp16" else None
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(args.device, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = loss_fn(model(x), y)
        if scaler:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        return loss

    def sync():
        if args.device == "cuda":
            torch.cuda.synchronize()

    model.train()
    for _ in range(args.warmup):
        step()
    sync()
    ips = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        sync()
        ips.append(args.batch * args.steps / (time.perf_counter() - t0))
    med = statistics.median(ips)
    out = {"framework": "pytorch " + torch.__version__ + (" compiled" if args.compile else ""),
           "model": args.model, "variant": args.variant, "batch": args.batch, "image": args.image,
           "precision": args.precision, "device": args.device, "threads": args.threads,
           "images_per_sec": med, "images_per_sec_all": ips, **cuda_settings,
           **torch_cuda_setup.peak_memory(torch, args.device)}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['framework']} {args.model}{args.variant} batch {args.batch} image {args.image} "
              f"{args.precision} {args.device}: {med:.1f} images/s")


if __name__ == "__main__":
    main()
