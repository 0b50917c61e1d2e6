#!/usr/bin/env python3
"""Runs `trickbench bench` and the PyTorch reference (bench/pytorch_bench.py)
on the same configurations in one call and prints a markdown table with the
ratio ours / PyTorch (and ours / torch.compile with --compile).

    python3 bench/compare.py --device cpu --threads 2 --preset cpu
    python3 bench/compare.py --device cuda --preset gpu --compile

Presets:
  cpu: ResNet-18 and ResNet-50, variants B and D, small stem on 28x28x1
       (Fashion-MNIST-sized, batch 64) and ImageNet stem at 224 px (batch 8).
  gpu: ResNet-50 D at 224 px, batch 256, fp32 / fp16 / bf16.
A configuration can also be given directly: --model resnet50 --variant D
--batch 32 --image 224 --precision fp16.
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


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trickbench", default=os.path.join(ROOT, "build", "trickbench"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--preset", choices=sorted(PRESETS))
    p.add_argument("--model")
    p.add_argument("--variant", default="B")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--image", type=int, default=224)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--precision", default="fp32")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--compile", action="store_true")
    a = p.parse_args()
    configs = PRESETS[a.preset] if a.preset else [dict(model=a.model or "resnet50", variant=a.variant,
                                                         batch=a.batch, image=a.image, channels=a.channels,
                                                         classes=a.classes, precision=a.precision)]
    env_threads = ["--threads", str(a.threads)]
    head = "| model | image | batch | precision | device | trickbench img/s | PyTorch img/s | ratio |"
    sep = "|---|---:|---:|---|---|---:|---:|---:|"
    if a.compile:
        head += " compiled img/s | ratio |"
        sep += "---:|---:|"
    print(head)
    print(sep)
    for c in configs:
        ours = run_json([a.trickbench, "bench"] + common_args(c, a) + env_threads)
        ref = run_json([sys.executable, os.path.join(HERE, "pytorch_bench.py")] + common_args(c, a) + env_threads)
        o = ours["images_per_sec"] if ours else float("nan")
        r = ref["images_per_sec"] if ref else float("nan")
        row = (f"| {c['model']}{'-' + c['variant']} | {c['image']}x{c['image']}x{c['channels']} | {c['batch']} | "
               f"{c['precision']} | {a.device} ({a.threads} thr) | {o:.1f} | {r:.1f} | {o / r:.2f} |")
        if a.compile:
            comp = run_json([sys.executable, os.path.join(HERE, "pytorch_bench.py")] + common_args(c, a)
                            + env_threads + ["--compile"])
            cc = comp["images_per_sec"] if comp else float("nan")
            row += f" {cc:.1f} | {o / cc:.2f} |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
