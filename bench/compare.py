#!/usr/bin/env python3
"""Runs `trickbench bench` and the PyTorch reference (bench/pytorch_bench.py)
on the same configurations in one call and prints a markdown table with the
ratio ours / PyTorch (and ours / torch.compile with --compile).

    python3 bench/compare.py --device cpu --threads 2 --preset cpu
    python3 bench/compare.py --device cuda --preset gpu --compile
    python3 bench/compare.py --device cpu --threads 2 --preset cpu-det
    python3 bench/compare.py --device cuda --preset gpu-det
    python3 bench/compare.py --device cpu --threads 2 --preset cpu-seg
    python3 bench/compare.py --device cuda --preset gpu-seg

Presets (classification, against bench/pytorch_bench.py):
  cpu: ResNet-18 and ResNet-50, variants B and D, small stem on 28x28x1
       (Fashion-MNIST-sized, batch 64) and ImageNet stem at 224 px (batch 8).
  gpu: ResNet-50 D at 224 px, batch 256, fp32 / fp16 / bf16.
Presets (--task detection: Faster R-CNN C4 training, `trickbench bench --task
detection` against bench/pytorch_detection_bench.py, torchvision's FasterRCNN
on the same backbone; fp32):
  cpu-det: ResNet-18 B, small stem, width 0.25 and 0.125, 128x128x1 canvases
           (fashion-scenes settings), batch 4.
  gpu-det: ResNet-50 D, ImageNet stem, 608x608x3 (VOC's 600 px shorter side,
           VOC settings), batch 8.
Presets (--task segmentation: FCN training on a dilated ResNet with the
auxiliary head, `trickbench bench --task segmentation` against
bench/pytorch_segmentation_bench.py, torchvision's FCN on the same backbone;
fp32; the params column says whether both networks have the same number of
trainable parameters):
  cpu-seg: ResNet-18 D (the backbone of matrices/fashion/segmentation.json),
           small stem, width 0.125 and 0.25, 64x64x1, 11 classes, batch 8.
  gpu-seg: ResNet-50 D, ImageNet stem, 480x480x3 crops, 150 classes (ADE20K,
           the paper's Table 9), batch 8.
A configuration can also be given directly: --model resnet50 --variant D
--batch 32 --image 224 --precision fp16 (classification), or --task detection
--model resnet18 --stem small --width 0.25 --batch 4 --image 128, or --task
segmentation --model resnet18 --variant D --stem small --width 0.125 --batch 8
--image 64.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

PRESETS = {
    "cpu": [dict(model=m, variant=v, batch=64, image=28, channels=1, classes=10, precision="fp32")
            for m in ("resnet18", "resnet50") for v in ("B", "D")]
    + [dict(model=m, variant=v, batch=8, image=224, channels=3, classes=1000, precision="fp32")
       for m in ("resnet18", "resnet50") for v in ("B", "D")],
    "gpu": [dict(model="resnet50", variant="D", batch=256, image=224, channels=3, classes=1000, precision=p)
            for p in ("fp32", "fp16", "bf16")],
}

DET_PRESETS = {
    "cpu-det": [dict(model="resnet18", variant="B", stem="small", width=w, batch=4, image=128)
                for w in (0.25, 0.125)],
    "gpu-det": [dict(model="resnet50", variant="D", stem="imagenet", width=1.0, batch=8, image=608)],
}

SEG_PRESETS = {
    "cpu-seg": [dict(model="resnet18", variant="D", stem="small", width=w, batch=8, image=64, classes=11, channels=1)
                for w in (0.125, 0.25)],
    "gpu-seg": [dict(model="resnet50", variant="D", stem="imagenet", width=1.0, batch=8, image=480, classes=150,
                     channels=3)],
}


def run_json(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}\n")
        return None
    for line in reversed(r.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return None


def common_args(c, a):
    return ["--model", c["model"], "--variant", c["variant"], "--batch", str(c["batch"]), "--image",
            str(c["image"]), "--precision", c["precision"], "--device", a.device, "--steps", str(a.steps),
            "--warmup", str(a.warmup), "--repeats", str(a.repeats), "--classes", str(c["classes"]),
            "--channels", str(c["channels"]), "--json"]


def det_args(c, a):
    """Options both detection benchmarks take (classes, channels and settings follow the image size
    unless given)."""
    extra = [x for k in ("classes", "channels") if c.get(k) for x in ("--" + k, str(c[k]))]
    return ["--model", c["model"], "--variant", c["variant"], "--stem", c["stem"], "--width", str(c["width"]),
            "--batch", str(c["batch"]), "--image", str(c["image"]), "--device", a.device, "--steps", str(a.steps),
            "--warmup", str(a.warmup), "--repeats", str(a.repeats), "--threads", str(a.threads), "--json"] + extra


def memory(result, device):
    """The memory column of one side: GPU memory in use after the timed steps
    (GiB, device_used_bytes) on CUDA, else the process's peak RSS (MiB)."""
    key, unit = ("device_used_bytes", 2 ** 30) if device == "cuda" else ("peak_rss_bytes", 2 ** 20)
    if not result or not isinstance(result.get(key), (int, float)):
        return "?"
    return f"{result[key] / unit:,.1f}" if device == "cuda" else f"{result[key] / unit:,.0f}"


def run_detection(a):
    if a.compile:
        sys.exit("compare.py: --compile is for classification only (torch.compile of torchvision's detection "
                 "models is not measured here)")
    if a.precision != "fp32":
        sys.exit("compare.py: the detection task trains in fp32 only (--precision fp32)")
    configs = DET_PRESETS[a.preset] if a.preset else [
        dict(model=a.model or "resnet50", variant=a.variant, stem=a.stem or "auto", width=a.width or 1.0,
             batch=a.batch or 4, image=a.image or 128, classes=a.classes, channels=a.channels)]
    print("| model | stem | width | image | batch | settings | device | trickbench img/s | PyTorch img/s | ratio |")
    print("|---|---|---:|---:|---:|---|---|---:|---:|---:|")
    for c in configs:
        ours = run_json([a.trickbench, "bench", "--task", "detection"] + det_args(c, a))
        ref = run_json([sys.executable, os.path.join(HERE, "pytorch_detection_bench.py")] + det_args(c, a))
        o = ours["images_per_sec"] if ours else float("nan")
        r = ref["images_per_sec"] if ref else float("nan")
        shape = ours or ref or {}
        image = f"{c['image']}x{c['image']}x{shape.get('channels', '?')}"
        print(f"| {c['model']}-{c['variant']} Faster R-CNN | {shape.get('stem', c['stem'])} | {c['width']:g} | "
              f"{image} | {c['batch']} | {shape.get('settings', '?')} | {a.device} ({a.threads} thr) | {o:.2f} | "
              f"{r:.2f} | {o / r:.2f} |", flush=True)


def run_segmentation(a):
    if a.compile:
        sys.exit("compare.py: --compile is for classification only (torch.compile of the FCN is not measured here)")
    if a.precision != "fp32":
        sys.exit("compare.py: the segmentation task trains in fp32 only (--precision fp32)")
    configs = SEG_PRESETS[a.preset] if a.preset else [
        dict(model=a.model or "resnet50", variant=a.variant, stem=a.stem or "auto", width=a.width or 1.0,
             batch=a.batch or 8, image=a.image or 96, classes=a.classes, channels=a.channels)]
    print("| model | stem | width | image | batch | classes | device | trickbench img/s | PyTorch img/s | ratio | "
          "params |")
    print("|---|---|---:|---:|---:|---:|---|---:|---:|---:|---|")
    for c in configs:
        # det_args: the same options (classes and channels follow the image size unless given)
        ours = run_json([a.trickbench, "bench", "--task", "segmentation"] + det_args(c, a))
        ref = run_json([sys.executable, os.path.join(HERE, "pytorch_segmentation_bench.py")] + det_args(c, a))
        o = ours["images_per_sec"] if ours else float("nan")
        r = ref["images_per_sec"] if ref else float("nan")
        shape = ours or ref or {}
        image = f"{c['image']}x{c['image']}x{shape.get('channels', '?')}"
        if ours and ref:
            params = f"{ours['params']:,} both" if ours["params"] == ref["params"] else \
                f"MISMATCH {ours['params']:,} vs {ref['params']:,}"
        else:
            params = "?"
        print(f"| {c['model']}-{c['variant']} FCN | {shape.get('stem', c['stem'])} | {c['width']:g} | {image} | "
              f"{c['batch']} | {shape.get('classes', '?')} | {a.device} ({a.threads} thr) | {o:.2f} | {r:.2f} | "
              f"{o / r:.2f} | {params} |", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trickbench", default=os.path.join(ROOT, "build", "trickbench"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--task", choices=["classification", "detection", "segmentation"],
                   help="default: the preset's task, else classification")
    p.add_argument("--preset", choices=sorted(PRESETS) + sorted(DET_PRESETS) + sorted(SEG_PRESETS))
    p.add_argument("--model")
    p.add_argument("--variant", default="B")
    p.add_argument("--batch", type=int)
    p.add_argument("--image", type=int)
    p.add_argument("--channels", type=int)
    p.add_argument("--classes", type=int)
    p.add_argument("--precision", default="fp32")
    p.add_argument("--stem", help="detection and segmentation only: auto (default) | small | imagenet")
    p.add_argument("--width", type=float,
                   help="detection and segmentation only: the backbone's width multiplier (default 1)")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--compile", action="store_true")
    a = p.parse_args()
    preset_task = None if not a.preset else "detection" if a.preset in DET_PRESETS \
        else "segmentation" if a.preset in SEG_PRESETS else "classification"
    task = a.task or preset_task or "classification"
    if preset_task and task != preset_task:
        sys.exit(f"compare.py: preset {a.preset} is a {preset_task} preset (--task {task})")
    if task == "detection":
        run_detection(a)
        return
    if task == "segmentation":
        run_segmentation(a)
        return
    if a.stem is not None or a.width is not None:
        sys.exit("compare.py: --stem and --width are detection and segmentation options (--task detection or "
                 "segmentation)")
    configs = PRESETS[a.preset] if a.preset else [dict(model=a.model or "resnet50", variant=a.variant,
                                                         batch=a.batch or 32, image=a.image or 224,
                                                         channels=a.channels or 3, classes=a.classes or 1000,
                                                         precision=a.precision)]
    env_threads = ["--threads", str(a.threads)]
    mem = "GPU GiB in use" if a.device == "cuda" else "peak RSS MiB"
    head = f"| model | image | batch | precision | device | trickbench img/s | PyTorch img/s | ratio | {mem}: ours | PyTorch |"
    sep = "|---|---:|---:|---|---|---:|---:|---:|---:|---:|"
    if a.compile:
        head += " compiled img/s | ratio |"
        sep += "---:|---:|"
    print(head)
    print(sep)
    gemm = set()
    for c in configs:
        ours = run_json([a.trickbench, "bench"] + common_args(c, a) + env_threads)
        if ours and "cpu_gemm" in ours:
            gemm.add(ours["cpu_gemm"])
        ref = run_json([sys.executable, os.path.join(HERE, "pytorch_bench.py")] + common_args(c, a) + env_threads)
        o = ours["images_per_sec"] if ours else float("nan")
        r = ref["images_per_sec"] if ref else float("nan")
        row = (f"| {c['model']}{'-' + c['variant']} | {c['image']}x{c['image']}x{c['channels']} | {c['batch']} | "
               f"{c['precision']} | {a.device} ({a.threads} thr) | {o:.1f} | {r:.1f} | {o / r:.2f} | "
               f"{memory(ours, a.device)} | {memory(ref, a.device)} |")
        if a.compile:
            comp = run_json([sys.executable, os.path.join(HERE, "pytorch_bench.py")] + common_args(c, a)
                            + env_threads + ["--compile"])
            cc = comp["images_per_sec"] if comp else float("nan")
            row += f" {cc:.1f} | {o / cc:.2f} |"
        print(row, flush=True)
    if gemm:
        print(f"\ntrickbench's CPU GEMM: {'; '.join(sorted(gemm))}")


if __name__ == "__main__":
    main()
