#!/usr/bin/env python3
"""PyTorch reference for `trickbench bench --task segmentation`: the same FCN
training step on random data, with torchvision's FCN (the model class of
torchvision.models.segmentation.fcn_resnet50) on the dilated ResNet that
trickbench builds (models/fcn.h, models/resnet.c):

  backbone   a ResNet with replace_stride_with_dilation=[False, True, True]
             (layer3 dilation 2, layer4 dilation 4, both stride 1; the first
             block of each dilated stage dilates as the stage before ended,
             as torchvision's _make_layer), built stage by stage so that the
             width multiplier, the small stem and the variants work:
             torchvision's Bottleneck (which takes a dilation) for ResNet-50+;
             for ResNet-18/34 torchvision's BasicBlock refuses dilation > 1,
             so a BasicBlock twin with the dilations of
             tb_resnet_build_stage_dilated (conv1: the first block's dilation,
             conv2: the stage's) stands in. Width-scaled as trickbench's
             --width (round(c * width), at least 1); variant B (stride on the
             3x3), C (deep stem), D (deep stem and the 2x2 average-pool
             shortcut, timm's resnet*d); the small stem is trickbench's: one
             3x3 stride-1 conv + BN + ReLU, no max pool. BN trained.
  heads      torchvision's FCNHead (3x3 conv to in/4 channels, BN, ReLU,
             dropout 0.1, 1x1 conv with bias) on layer4, and an auxiliary
             FCNHead on layer3; both upsampled bilinearly (align_corners=False)
             to the input size by torchvision's FCN.forward
  loss       cross-entropy with ignore_index=-1 on the main logits + 0.5 x the
             same on the auxiliary logits
  optimiser  SGD lr 0.001, momentum 0.9, Nesterov, weight decay 1e-4 (the
             values trickbench's benchmark uses)

Data: random N(0, 1) images of S x S and random labels with 5 % of the pixels
ignored (-1), from a fixed seed, reused by every step; fp32 (on a GPU,
as trickbench: TF32 allowed, cuDNN benchmark mode; bench/torch_cuda_setup.py); torch.set_num_threads(T);
channels_last memory format unless --memory-format contiguous. Prints images/s
(median over --repeats runs of --steps steps, after --warmup steps); --json
prints one object with "images_per_sec" and "params" (trainable parameters:
the same network as trickbench's has the same count). For ResNet-50/101/152 B
with the ImageNet stem at width 1 the count is also checked against
torchvision.models.segmentation.fcn_resnet50/101 (and torchvision's own
resnet with replace_stride_with_dilation) and a mismatch is an error.

Defaults as trickbench's: below 256 px the fashion-scenes setting (small stem,
11 classes, 1 channel), from 256 px the ADE20K one (ImageNet stem, 150
classes, 3 channels). A benchmark, not a test: nothing in `meson test` uses
it, and PyTorch/torchvision come from pip.
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch_cuda_setup
from collections import OrderedDict

LAYOUTS = {"resnet18": ("basic", (2, 2, 2, 2)), "resnet34": ("basic", (3, 4, 6, 3)),
           "resnet50": ("bottleneck", (3, 4, 6, 3)), "resnet101": ("bottleneck", (3, 4, 23, 3)),
           "resnet152": ("bottleneck", (3, 8, 36, 3))}
ADE20K_FROM_PX = 256
IGNORED_PERCENT = 5
AUX_WEIGHT = 0.5


def scale_width(c, width):
    """trickbench's tb_scale_width: lroundf(c * width), at least 1."""
    return max(1, int(math.floor(c * width + 0.5)))


def build_stem(args, nn):
    c64 = scale_width(64, args.width)
    if args.stem == "small":
        return nn.Sequential(nn.Conv2d(args.channels, c64, 3, 1, 1, bias=False), nn.BatchNorm2d(c64),
                             nn.ReLU(inplace=True)), c64
    if args.variant in ("C", "D"):
        c32 = scale_width(32, args.width)
        layers = [nn.Conv2d(args.channels, c32, 3, 2, 1, bias=False), nn.BatchNorm2d(c32), nn.ReLU(inplace=True),
                  nn.Conv2d(c32, c32, 3, 1, 1, bias=False), nn.BatchNorm2d(c32), nn.ReLU(inplace=True),
                  nn.Conv2d(c32, c64, 3, 1, 1, bias=False)]
    else:
        layers = [nn.Conv2d(args.channels, c64, 7, 2, 3, bias=False)]
    layers += [nn.BatchNorm2d(c64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
    return nn.Sequential(*layers), c64


def dilated_basic_block(nn):
    class DilatedBasicBlock(nn.Module):
        """torchvision's BasicBlock with dilated 3x3s (conv1 dilation d1, conv2 d2; padding = dilation)."""
        expansion = 1

        def __init__(self, inplanes, planes, stride, downsample, d1, d2):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, d1, dilation=d1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, d2, dilation=d2, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = downsample

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + identity)

    return DilatedBasicBlock


def build_stage(args, nn, stage, dilation, inplanes):
    """tb_resnet_build_stage_dilated: stride 2 on the first block of stages 2-4 unless dilated; the first block
    of a dilated stage dilates by the previous stage's dilation (1 before layer3, 2 before layer4)."""
    from torchvision.models.resnet import Bottleneck
    kind, blocks = LAYOUTS[args.model]
    planes = scale_width((64, 128, 256, 512)[stage - 1], args.width)
    out = planes * (4 if kind == "bottleneck" else 1)
    basic = dilated_basic_block(nn) if kind == "basic" else None
    layers = []
    for b in range(blocks[stage - 1]):
        stride = 2 if b == 0 and stage > 1 and dilation == 1 else 1
        d = (2 if dilation == 4 else 1) if b == 0 else dilation
        down = None
        if stride != 1 or inplanes != out:
            if args.variant == "D":
                pool = nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False) if stride != 1 else nn.Identity()
                down = nn.Sequential(pool, nn.Conv2d(inplanes, out, 1, 1, bias=False), nn.BatchNorm2d(out))
            else:
                down = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out))
        if kind == "bottleneck":
            layers.append(Bottleneck(inplanes, planes, stride, down, dilation=d))
        else:
            layers.append(basic(inplanes, planes, stride, down, d, dilation))
        inplanes = out
    return nn.Sequential(*layers), inplanes


def build_model(args, nn):
    from torchvision.models._utils import IntermediateLayerGetter
    from torchvision.models.segmentation.fcn import FCN, FCNHead

    stem, c = build_stem(args, nn)
    parts = [("stem", stem)]
    for stage, dilation in ((1, 1), (2, 1), (3, 2), (4, 4)):
        layer, c = build_stage(args, nn, stage, dilation, c)
        parts.append((f"layer{stage}", layer))
        if stage == 3:
            c3 = c
    backbone = IntermediateLayerGetter(nn.Sequential(OrderedDict(parts)), {"layer3": "aux", "layer4": "out"})
    return FCN(backbone, FCNHead(c, args.classes), FCNHead(c3, args.classes))


def count(params):
    return sum(q.numel() for q in params)


def torchvision_params(args):
    """The trainable parameters of torchvision's own FCN (fcn_resnet50/101) and of an FCN on torchvision's
    resnet152 with replace_stride_with_dilation, where trickbench's network should equal them; None elsewhere."""
    if LAYOUTS[args.model][0] != "bottleneck" or args.variant != "B" or args.stem != "imagenet" \
            or args.width != 1.0 or args.channels != 3:
        return None
    import torchvision
    from torchvision.models._utils import IntermediateLayerGetter
    from torchvision.models.segmentation.fcn import FCN, FCNHead
    seg = torchvision.models.segmentation
    if hasattr(seg, "fcn_" + args.model):
        model = getattr(seg, "fcn_" + args.model)(weights=None, weights_backbone=None, num_classes=args.classes,
                                                   aux_loss=True)
    else:
        resnet = getattr(torchvision.models, args.model)(weights=None,
                                                         replace_stride_with_dilation=[False, True, True])
        backbone = IntermediateLayerGetter(resnet, {"layer3": "aux", "layer4": "out"})
        model = FCN(backbone, FCNHead(2048, args.classes), FCNHead(1024, args.classes))
    return count(model.parameters())


def make_batch(args, torch, dev):
    g = torch.Generator().manual_seed(12345)
    images = torch.randn(args.batch, args.channels, args.image, args.image, generator=g)
    labels = torch.randint(0, args.classes, (args.batch, args.image, args.image), generator=g)
    ignored = torch.rand(args.batch, args.image, args.image, generator=g) < IGNORED_PERCENT / 100.0
    labels[ignored] = -1
    return images.to(dev), labels.to(dev)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet50", choices=sorted(LAYOUTS))
    p.add_argument("--variant", default="B", choices=["B", "C", "D"])
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--stem", default="auto", choices=["auto", "imagenet", "small"])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--image", type=int, default=96)
    p.add_argument("--classes", type=int, default=0, help="0: 11 below 256 px (fashion-scenes), 150 from 256 px")
    p.add_argument("--channels", type=int, default=0, help="0: 1 below 256 px, 3 from 256 px")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--memory-format", default="channels_last", choices=["channels_last", "contiguous"])
    p.add_argument("--precision", default="fp32", choices=["fp32"])
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    ade = args.image >= ADE20K_FROM_PX
    if args.stem == "auto":
        args.stem = "imagenet" if ade else "small"
    args.classes = args.classes or (150 if ade else 11)
    args.channels = args.channels or (3 if ade else 1)

    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torchvision
    torch.set_num_threads(args.threads)
    cuda_settings = torch_cuda_setup.configure(torch, args.device)
    dev = torch.device(args.device)
    torch.manual_seed(1)
    model = build_model(args, nn)
    params = [q for q in model.parameters() if q.requires_grad]
    n_params = count(params)
    tv_params = torchvision_params(args)
    if tv_params is not None and tv_params != n_params:
        sys.exit(f"pytorch_segmentation_bench: {n_params} parameters, torchvision's FCN has {tv_params}")
    fmt = torch.channels_last if args.memory_format == "channels_last" else torch.contiguous_format
    model = model.to(dev).to(memory_format=fmt)
    opt = torch.optim.SGD(params, lr=0.001, momentum=0.9, nesterov=True, weight_decay=1e-4)
    images, labels = make_batch(args, torch, dev)
    images = images.contiguous(memory_format=fmt)

    def step():
        out = model(images)
        loss = F.cross_entropy(out["out"], labels, ignore_index=-1) \
            + AUX_WEIGHT * F.cross_entropy(out["aux"], labels, ignore_index=-1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    def sync():
        if args.device == "cuda":
            torch.cuda.synchronize()

    model.train()
    loss = None
    for _ in range(args.warmup):
        loss = step()
    sync()
    ips = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            loss = step()
        sync()
        ips.append(args.batch * args.steps / (time.perf_counter() - t0))
    med = statistics.median(ips)
    out = {"framework": f"pytorch {torch.__version__} torchvision {torchvision.__version__}",
           "task": "segmentation", "model": args.model, "variant": args.variant, "stem": args.stem,
           "width": args.width, "batch": args.batch, "image": args.image, "channels": args.channels,
           "classes": args.classes, "precision": "fp32", "aux_weight": AUX_WEIGHT, "head_dropout": 0.1,
           "ignored_percent": IGNORED_PERCENT, "memory_format": args.memory_format, "device": args.device,
           "threads": args.threads, "params": n_params, "torchvision_fcn_params": tv_params,
           "images_per_sec": med, "images_per_sec_all": ips, **cuda_settings,
           **torch_cuda_setup.peak_memory(torch, args.device),
           "loss": float(loss.detach()) if loss is not None else None}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['framework']} FCN {args.model}-{args.variant} ({args.stem} stem, width {args.width}) "
              f"batch {args.batch} image {args.image}x{args.image}x{args.channels} {args.device}: "
              f"{med:.2f} images/s, {n_params} parameters")


if __name__ == "__main__":
    main()
