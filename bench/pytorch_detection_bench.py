#!/usr/bin/env python3
"""PyTorch reference for `trickbench bench --task detection`: the same Faster
R-CNN training step on random data, with torchvision's FasterRCNN built on
the C4 design trickbench uses (models/faster_rcnn.h):

  backbone   the ResNet stem and layer1..layer3 (torchvision's BasicBlock /
             Bottleneck, FrozenBatchNorm2d everywhere; stem and layer1 frozen),
             width-scaled as trickbench's --width (round(c * width), at least 1);
             variant B (stride on the 3x3), C (deep stem), D (deep stem and the
             2x2 average-pool shortcut, timm's resnet*d); the small stem is
             trickbench's: one 3x3 stride-1 conv + BN + ReLU, no max pool
  RPN        torchvision's RPNHead (3x3 conv + ReLU, 1x1 objectness and box
             deltas; a sigmoid objectness where trickbench has a 2-class
             softmax: A outputs instead of 2A, a negligible difference), an
             AnchorGenerator with the same sizes and ratios, the same
             pre/post-NMS proposal counts, NMS 0.7, IoU 0.7/0.3, anchors per
             image, positive fraction 0.5, minimum proposal size
  RoI head   MultiScaleRoIAlign on the one feature map (same output size,
             sampling 2, aligned=False as trickbench's default), box head =
             layer4 + global average pool, FastRCNNPredictor; the same RoIs
             per image, positive fraction 0.25, IoU 0.5
  transform  min_size = max_size = S and no resize or normalisation at all
             (the images are S x S and already normalised, as trickbench's
             synthetic batch); the batch is still padded to a multiple of 32
  optimiser  SGD lr 0.001, momentum 0.9, Nesterov, weight decay 1e-4 (the
             values trickbench's benchmark uses)

Data: random N(0, 1) images of S x S and per image --objects random boxes
(sides uniform in [S/8, S/2], aspect h/w in [1/2, 2]) with random classes,
from a fixed seed, reused by every step; fp32 (on a GPU, as trickbench: TF32
allowed, cuDNN benchmark mode; bench/torch_cuda_setup.py); torch.set_num_threads(T);
channels_last memory format unless --memory-format contiguous (the model's
weights; cuDNN follows them with the batch the transform builds).
Prints images/s (median over --repeats runs of --steps steps, after --warmup
steps); --json prints one object with "images_per_sec". A benchmark, not a
test: nothing in `meson test` uses it, and PyTorch/torchvision come from pip.

Settings, as trickbench's --settings:
  voc             harness/config.c defaults: anchors 128/256/512, RPN batch 256,
                  12000 -> 2000 proposals, 128 RoIs per image, RoIAlign 14, min size 16
  fashion-scenes  matrices/fashion/detection.json: anchors 16/32/64, RPN batch
                  128, 2000 -> 300 proposals, 32 RoIs per image, RoIAlign 7, min size 4
  auto            voc for S >= 512, fashion-scenes below
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch_cuda_setup

SETTINGS = {
    "voc": dict(anchor_sizes=(128, 256, 512), anchor_ratios=(0.5, 1.0, 2.0), rpn_pre_nms_train=12000,
                rpn_post_nms_train=2000, rpn_pre_nms_test=6000, rpn_post_nms_test=300, rpn_min_size=16,
                rpn_batch=256, roi_batch=128, roi_size=14, classes=20, channels=3, stem="imagenet"),
    "fashion-scenes": dict(anchor_sizes=(16, 32, 64), anchor_ratios=(0.5, 1.0, 2.0), rpn_pre_nms_train=2000,
                           rpn_post_nms_train=300, rpn_pre_nms_test=1000, rpn_post_nms_test=100, rpn_min_size=4,
                           rpn_batch=128, roi_batch=32, roi_size=7, classes=10, channels=1, stem="small"),
}

LAYOUTS = {"resnet18": ("basic", (2, 2, 2, 2)), "resnet34": ("basic", (3, 4, 6, 3)),
           "resnet50": ("bottleneck", (3, 4, 6, 3)), "resnet101": ("bottleneck", (3, 4, 23, 3)),
           "resnet152": ("bottleneck", (3, 8, 36, 3))}


def scale_width(c, width):
    """trickbench's tb_scale_width: lroundf(c * width), at least 1."""
    return max(1, int(math.floor(c * width + 0.5)))


def build_stem(args, nn, FBN):
    c64 = scale_width(64, args.width)
    if args.stem == "small":
        return nn.Sequential(nn.Conv2d(args.channels, c64, 3, 1, 1, bias=False), FBN(c64), nn.ReLU(inplace=True)), c64
    if args.variant in ("C", "D"):
        c32 = scale_width(32, args.width)
        layers = [nn.Conv2d(args.channels, c32, 3, 2, 1, bias=False), FBN(c32), nn.ReLU(inplace=True),
                  nn.Conv2d(c32, c32, 3, 1, 1, bias=False), FBN(c32), nn.ReLU(inplace=True),
                  nn.Conv2d(c32, c64, 3, 1, 1, bias=False)]
    else:
        layers = [nn.Conv2d(args.channels, c64, 7, 2, 3, bias=False)]
    layers += [FBN(c64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
    return nn.Sequential(*layers), c64


def build_stage(args, nn, FBN, stage, inplanes):
    from torchvision.models.resnet import BasicBlock, Bottleneck
    kind, blocks = LAYOUTS[args.model]
    block = BasicBlock if kind == "basic" else Bottleneck
    planes = scale_width((64, 128, 256, 512)[stage - 1], args.width)
    out = planes * block.expansion
    layers = []
    for b in range(blocks[stage - 1]):
        stride = 2 if b == 0 and stage > 1 else 1
        down = None
        if stride != 1 or inplanes != out:
            if args.variant == "D":
                pool = nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False) if stride != 1 else nn.Identity()
                down = nn.Sequential(pool, nn.Conv2d(inplanes, out, 1, 1, bias=False), FBN(out))
            else:
                down = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False), FBN(out))
        layers.append(block(inplanes, planes, stride, down, norm_layer=FBN))
        inplanes = out
    return nn.Sequential(*layers), inplanes


def build_model(args, s, torch, nn):
    import torchvision
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
    from torchvision.models.detection.transform import GeneralizedRCNNTransform
    from torchvision.ops import FrozenBatchNorm2d as FBN

    stem, c = build_stem(args, nn, FBN)
    stages = []
    for stage in (1, 2, 3, 4):
        layer, c = build_stage(args, nn, FBN, stage, c)
        stages.append(layer)
        if stage == 3:
            c3 = c
    for m in (stem, stages[0]):  # frozen_stages 1: the stem and layer1
        m.requires_grad_(False)
    backbone = nn.Sequential(stem, *stages[:3])
    backbone.out_channels = c3

    class Stage5Head(nn.Module):
        """The C4 box head: layer4 on the pooled RoIs, then global average pooling."""

        def __init__(self, layer4):
            super().__init__()
            self.layer4 = layer4

        def forward(self, x):
            return torch.flatten(torch.nn.functional.adaptive_avg_pool2d(self.layer4(x), 1), 1)

    class AsIsTransform(GeneralizedRCNNTransform):
        """No resize and no normalisation: the images are S x S and normalised already."""

        def normalize(self, image):
            return image

        def resize(self, image, target=None):
            return image, target

    anchors = AnchorGenerator(sizes=(tuple(float(v) for v in s["anchor_sizes"]),),
                              aspect_ratios=(tuple(s["anchor_ratios"]),))
    pooler = torchvision.ops.MultiScaleRoIAlign(featmap_names=["0"], output_size=s["roi_size"], sampling_ratio=2)
    model = FasterRCNN(
        backbone, num_classes=None, min_size=args.image, max_size=args.image,
        image_mean=[0.0] * args.channels, image_std=[1.0] * args.channels,
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=s["rpn_pre_nms_train"], rpn_pre_nms_top_n_test=s["rpn_pre_nms_test"],
        rpn_post_nms_top_n_train=s["rpn_post_nms_train"], rpn_post_nms_top_n_test=s["rpn_post_nms_test"],
        rpn_nms_thresh=0.7, rpn_fg_iou_thresh=0.7, rpn_bg_iou_thresh=0.3,
        rpn_batch_size_per_image=s["rpn_batch"], rpn_positive_fraction=0.5,
        box_roi_pool=pooler, box_head=Stage5Head(stages[3]), box_predictor=FastRCNNPredictor(c, args.classes + 1),
        box_batch_size_per_image=s["roi_batch"], box_positive_fraction=0.25,
        box_fg_iou_thresh=0.5, box_bg_iou_thresh=0.5)
    model.transform = AsIsTransform(args.image, args.image, [0.0] * args.channels, [1.0] * args.channels)
    model.rpn.min_size = float(s["rpn_min_size"])
    return model


def make_batch(args, torch, dev):
    g = torch.Generator().manual_seed(12345)
    images = torch.randn(args.batch, args.channels, args.image, args.image, generator=g)
    side = float(args.image)
    targets = []
    for _ in range(args.batch):
        u = torch.rand(args.objects, 4, generator=g, dtype=torch.float64)
        size = side / 8 + u[:, 0] * (side / 2 - side / 8)
        aspect = torch.exp(math.log(0.5) + u[:, 1] * (math.log(2.0) - math.log(0.5)))  # h / w
        w, h = size / aspect.sqrt(), size * aspect.sqrt()
        x0, y0 = u[:, 2] * (side - w), u[:, 3] * (side - h)
        boxes = torch.stack([x0, y0, x0 + w, y0 + h], 1).float()
        labels = torch.randint(1, args.classes + 1, (args.objects,), generator=g)
        targets.append({"boxes": boxes.to(dev), "labels": labels.to(dev)})
    return [im.to(dev) for im in images], targets


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet50", choices=sorted(LAYOUTS))
    p.add_argument("--variant", default="B", choices=["B", "C", "D"])
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--stem", default="auto", choices=["auto", "imagenet", "small"])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--image", type=int, default=128)
    p.add_argument("--classes", type=int, default=0, help="foreground classes (0: 10 fashion-scenes, 20 voc)")
    p.add_argument("--channels", type=int, default=0, help="0: 1 for fashion-scenes, 3 for voc")
    p.add_argument("--objects", type=int, default=3)
    p.add_argument("--settings", default="auto", choices=["auto", "voc", "fashion-scenes"])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--memory-format", default="channels_last", choices=["channels_last", "contiguous"])
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.settings == "auto":
        args.settings = "voc" if args.image >= 512 else "fashion-scenes"
    s = SETTINGS[args.settings]
    if args.stem == "auto":
        args.stem = s["stem"]
    args.classes = args.classes or s["classes"]
    args.channels = args.channels or s["channels"]

    import torch
    import torch.nn as nn
    torch.set_num_threads(args.threads)
    cuda_settings = torch_cuda_setup.configure(torch, args.device)
    dev = torch.device(args.device)
    torch.manual_seed(1)
    fmt = torch.channels_last if args.memory_format == "channels_last" else torch.contiguous_format
    model = build_model(args, s, torch, nn).to(dev).to(memory_format=fmt)
    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.SGD(params, lr=0.001, momentum=0.9, nesterov=True, weight_decay=1e-4)
    images, targets = make_batch(args, torch, dev)

    def step():
        losses = model(images, targets)
        loss = sum(losses.values())
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
    import torchvision
    out = {"framework": f"pytorch {torch.__version__} torchvision {torchvision.__version__}", "task": "detection",
           "model": args.model, "variant": args.variant, "stem": args.stem, "width": args.width,
           "batch": args.batch, "image": args.image, "channels": args.channels, "classes": args.classes,
           "objects": args.objects, "settings": args.settings, "memory_format": args.memory_format,
           "device": args.device, "threads": args.threads,
           "params": sum(q.numel() for q in params), "images_per_sec": med, "images_per_sec_all": ips, **cuda_settings,
           **torch_cuda_setup.peak_memory(torch, args.device),
           "loss": float(loss.detach()) if loss is not None else None}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['framework']} Faster R-CNN {args.model}-{args.variant} ({args.stem} stem, width {args.width}) "
              f"batch {args.batch} image {args.image} ({args.settings}) {args.device}: {med:.2f} images/s",
              file=sys.stdout)


if __name__ == "__main__":
    main()
