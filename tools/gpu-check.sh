#!/usr/bin/env bash
# The one prepared script for the GPU machine (../shared/device/README.md):
# prints the probe, builds the CUDA backend for sm_90, runs the `cuda` test
# suite, then the GPU benchmark of ResNet-50-D (224 px, batch 256, fp16 /
# bf16 / fp32, synthetic data) with trickbench and with the PyTorch
# reference, then the detection and segmentation training benchmarks
# (bench/compare.py's gpu-det and gpu-seg presets: Faster R-CNN C4 and FCN on
# ResNet-50-D, fp32) with both, and prints a short table last. It never stops
# at the first failure; every step runs under `timeout` and writes its full
# log to OUTDIR.
#
#   usage: tools/gpu-check.sh OUTDIR
#
# Environment (all optional):
#   GPU_CHECK_STEPS  steps to run, default "probe build test bench torch det seg"
#                    (split a session's short device time across calls)
#   BUILD_DIR        build folder, default build-gpu (git-ignored)
#   JOBS             parallel compile jobs, default 16
#   PRECISIONS       default "fp16 bf16 fp32"
#   BENCH_ARGS       model and shape, default
#                    "--model resnet50 --variant D --batch 256 --image 224"
#   BENCH_STEPS      default "--steps 20 --warmup 5 --repeats 3"
#   DET_ARGS         detection model and shape (compare.py's gpu-det), default
#                    "--model resnet50 --variant D --stem imagenet --width 1 --batch 8 --image 608"
#   SEG_ARGS         segmentation model and shape (compare.py's gpu-seg), default
#                    "--model resnet50 --variant D --stem imagenet --width 1 --batch 8 --image 480
#                    --classes 150 --channels 3"
#   TASK_STEPS       steps of the det / seg benchmarks, default "--steps 10 --warmup 3 --repeats 3"
# Before the first run there: bring .devdeps (../shared/device/pack-deps.sh,
# with nettle-dev libnettle8 added) along; this script sources its env.sh.
set -u

out=${1:?usage: tools/gpu-check.sh OUTDIR}
mkdir -p "$out" && out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.." || exit 1
steps=${GPU_CHECK_STEPS:-probe build test bench torch det seg}
build=${BUILD_DIR:-build-gpu}
jobs=${JOBS:-16}
precisions=${PRECISIONS:-fp16 bf16 fp32}
bench_args=${BENCH_ARGS:---model resnet50 --variant D --batch 256 --image 224}
bench_steps=${BENCH_STEPS:---steps 20 --warmup 5 --repeats 3}
det_args=${DET_ARGS:---model resnet50 --variant D --stem imagenet --width 1 --batch 8 --image 608}
seg_args=${SEG_ARGS:---model resnet50 --variant D --stem imagenet --width 1 --batch 8 --image 480 --classes 150 --channels 3}
task_steps=${TASK_STEPS:---steps 10 --warmup 3 --repeats 3}
status_lines=()
declare -A ips_ours ips_eager ips_unfused replayed ips_torch task_ours task_torch

wants() { case " $steps " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# run_step NAME LIMIT_SECONDS CMD...: full output to OUTDIR/NAME.log, its tail here.
run_step() {
    local name=$1 limit=$2
    shift 2
    local log="$out/$name.log" t0 rc st
    t0=$(date +%s)
    echo "== $name (limit ${limit}s): $*" | tee -a "$out/commands.txt"
    timeout --kill-after=15 "$limit" "$@" >"$log" 2>&1
    rc=$?
    case $rc in
    0) st=ok ;;
    77) st=skipped ;;
    124 | 137) st="TIMEOUT after ${limit}s" ;;
    *) st="FAIL (exit $rc)" ;;
    esac
    tail -n 12 "$log"
    status_lines+=("| $name | $st | $(($(date +%s) - t0)) s | |")
    return $rc
}

skip_step() { status_lines+=("| $1 | skipped | - | $2 |"); }

# images/s from the last JSON object of a log ("images_per_sec").
# json_field LOG KEY: KEY of the last JSON object line of LOG holding it ("-" if none)
json_field() {
    python3 - "$1" "$2" <<'EOF' 2>/dev/null || echo "-"
import json, sys
v = "-"
for line in open(sys.argv[1], errors="replace"):
    line = line.strip()
    if line.startswith("{") and sys.argv[2] in line:
        try:
            x = json.loads(line)[sys.argv[2]]
            v = "%.1f" % x if isinstance(x, float) else str(x)
        except Exception:
            pass
print(v)
EOF
}

images_per_sec() { json_field "$1" images_per_sec; }

# ---- environment: brought libraries, cuDNN location ------------------------
if [ -f .devdeps/env.sh ]; then
    # shellcheck disable=SC1091
    . .devdeps/env.sh
    echo "sourced .devdeps/env.sh"
fi
cudnn_opts=()
have_cudnn_header() {
    local d
    for d in "${CUDA_HOME:-/usr/local/cuda}/include" /usr/local/cuda/include /usr/include \
        /usr/include/x86_64-linux-gnu; do
        [ -f "$d/cudnn_version.h" ] && return 0
    done
    return 1
}
if ! have_cudnn_header; then
    # pip's nvidia-cudnn-cu13: headers and libcudnn*.so.9, but no plain libcudnn.so
    d=$(python3 -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null)
    if [ -n "$d" ] && [ -f "$d/include/cudnn_version.h" ]; then
        mkdir -p /tmp/cudnn/lib
        ln -sf "$d"/lib/libcudnn*.so.9 /tmp/cudnn/lib/
        for f in /tmp/cudnn/lib/*.so.9; do ln -sf "$f" "${f%.9}"; done
        cudnn_opts=(-Dcudnn_include="$d/include" -Dcudnn_lib=/tmp/cudnn/lib)
        export LD_LIBRARY_PATH="$d/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        echo "cuDNN from pip: $d"
    else
        echo "cuDNN headers not found (toolkit, /usr/include, pip nvidia.cudnn)"
    fi
fi
export PATH="${CUDA_HOME:-/usr/local/cuda}/bin:$PATH"

# ---- probe -----------------------------------------------------------------
if wants probe; then
    probe=.devdeps/probe.sh
    [ -f "$probe" ] || probe=../shared/device/probe.sh
    if [ -f "$probe" ]; then
        run_step probe 120 bash "$probe"
        cat "$out/probe.log" # the whole probe, as the README asks
    else
        skip_step probe "no probe.sh in .devdeps/ or ../shared/device/"
    fi
    nvidia-smi >"$out/nvidia-smi.log" 2>&1
fi

# ---- build -----------------------------------------------------------------
if wants build; then
    if [ -f "$build/build.ninja" ]; then
        run_step configure 180 meson setup --reconfigure "$build" -Dcuda=enabled -Dsm_archs=90 \
            --buildtype=release "${cudnn_opts[@]}"
    else
        run_step configure 180 meson setup "$build" -Dcuda=enabled -Dsm_archs=90 --buildtype=release \
            "${cudnn_opts[@]}"
    fi
    [ -f "$build/meson-logs/meson-log.txt" ] && cp "$build/meson-logs/meson-log.txt" "$out/meson-log.txt"
    # Meson 1.0 asks nvcc for no dependency files, so ninja does not see a
    # header change under a .cu file (a rerun after a fix would link objects
    # built against the old structs): drop every CUDA object older than the
    # newest header.
    newest=$(find kernels tests/cuda \( -name '*.h' -o -name '*.cuh' \) -printf '%T@ %p\n' | sort -n | tail -n 1 | cut -d' ' -f2-)
    find "$build" -name '*.cu.o' ! -newer "$newest" -delete
    # the CUDA tests and the CLI first, so that an unrelated broken file cannot hide them
    run_step build-cuda 600 ninja -C "$build" -j"$jobs" trickbench tests/cuda/test_cuda_layers \
        tests/cuda/test_cuda_util_ops tests/cuda/test_cuda_train tests/cuda/test_cuda_host \
        tests/cuda/test_cuda_detection tests/cuda/test_cuda_box_targets tests/cuda/test_cuda_box_nms
    run_step build-all 600 ninja -C "$build" -j"$jobs"
    run_step version 60 "$build/trickbench" version
fi

# ---- cuda test suite ---------------------------------------------------------
if wants test; then
    if [ -x "$build/tests/cuda/test_cuda_layers" ]; then
        run_step test-cuda 900 meson test -C "$build" --no-rebuild --suite cuda --print-errorlogs \
            --timeout-multiplier 2
        [ -f "$build/meson-logs/testlog.txt" ] && cp "$build/meson-logs/testlog.txt" "$out/testlog-cuda.txt"
        # meson calls a run where every test skipped (no GPU) a success: say so
        counts=$(grep -E '^(Ok|Fail|Skipped|Timeout): ' "$out/test-cuda.log" | tr -s ' ' | tr '\n' ' ')
        [ -n "$counts" ] && status_lines[-1]="${status_lines[-1]%|}$counts|"
    else
        skip_step test-cuda "the cuda tests were not built"
    fi
    # the host-side test takes its GPU branch here (backend created and named)
    if [ -x "$build/tests/cuda/test_cuda_host" ]; then
        run_step test-cuda-host 120 "$build/tests/cuda/test_cuda_host"
    fi
fi

# ---- benchmarks --------------------------------------------------------------
if wants bench; then
    if [ -x "$build/trickbench" ] && "$build/trickbench" bench --help >/dev/null 2>&1; then
        for p in $precisions; do
            # shellcheck disable=SC2086
            run_step "bench-$p" 420 "$build/trickbench" bench $bench_args --precision "$p" --device cuda \
                $bench_steps --json
            ips_ours[$p]=$(images_per_sec "$out/bench-$p.log")
            # steps replayed from the captured CUDA graph, of all steps run
            replayed[$p]="$(json_field "$out/bench-$p.log" steps_replayed)/$(json_field "$out/bench-$p.log" steps_run)"
            # the same step op by op, without the CUDA graph (what the capture buys)
            # shellcheck disable=SC2086
            run_step "bench-$p-eager" 420 env TRICKBENCH_NO_CAPTURE=1 "$build/trickbench" bench $bench_args \
                --precision "$p" --device cuda $bench_steps --json
            ips_eager[$p]=$(images_per_sec "$out/bench-$p-eager.log")
            # fp16 is where cuDNN's fused BN + add + ReLU runs: the same step with the
            # three ops apart (what the fusion buys)
            if [ "$p" = fp16 ]; then
                # shellcheck disable=SC2086
                run_step "bench-$p-unfused" 420 env TRICKBENCH_NO_FUSE=1 "$build/trickbench" bench $bench_args \
                    --precision "$p" --device cuda $bench_steps --json
                ips_unfused[$p]=$(images_per_sec "$out/bench-$p-unfused.log")
            fi
        done
    else
        skip_step bench "no trickbench binary with a bench command"
    fi
fi
if wants torch; then
    if [ -f bench/pytorch_bench.py ]; then
        for p in $precisions; do
            # shellcheck disable=SC2086
            run_step "torch-$p" 420 python3 bench/pytorch_bench.py $bench_args --precision "$p" --device cuda \
                $bench_steps --json
            ips_torch[$p]=$(images_per_sec "$out/torch-$p.log")
        done
    else
        skip_step torch "bench/pytorch_bench.py not found"
    fi
fi

# ---- detection and segmentation training benchmarks (fp32) -------------------------
# task_bench TASK ARGS: trickbench and its PyTorch reference on one configuration.
task_bench() {
    local task=$1 args=$2 ref
    case $task in
    detection) ref=bench/pytorch_detection_bench.py ;;
    *) ref=bench/pytorch_segmentation_bench.py ;;
    esac
    if [ -x "$build/trickbench" ] && "$build/trickbench" bench --task "$task" --help >/dev/null 2>&1; then
        # shellcheck disable=SC2086
        run_step "$task-trickbench" 420 "$build/trickbench" bench --task "$task" $args --device cuda \
            $task_steps --json
        task_ours[$task]=$(images_per_sec "$out/$task-trickbench.log")
    else
        skip_step "$task-trickbench" "no trickbench binary with bench --task $task"
    fi
    if [ -f "$ref" ]; then
        # shellcheck disable=SC2086
        run_step "$task-torch" 420 python3 "$ref" $args --device cuda $task_steps --json
        task_torch[$task]=$(images_per_sec "$out/$task-torch.log")
    else
        skip_step "$task-torch" "$ref not found"
    fi
}
if wants det; then
    task_bench detection "$det_args"
fi
if wants seg; then
    task_bench segmentation "$seg_args"
fi

# ---- the short table, last -----------------------------------------------------
{
    echo
    gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
    echo "## gpu-check $(date -u +%Y-%m-%dT%H:%MZ) on ${gpu:-no GPU}"
    dirty=$(git diff --quiet 2>/dev/null || echo ' (modified)')
    echo "git $(git rev-parse --short=12 HEAD 2>/dev/null)$dirty; logs in $out"
    echo
    echo "| step | status | time | note |"
    echo "|---|---|---|---|"
    printf '%s\n' "${status_lines[@]}"
    if wants bench || wants torch; then
        echo
        echo "images/s, $bench_args, synthetic data:"
        echo
        echo "| precision | trickbench | steps replayed | trickbench op by op | BN, add, ReLU unfused | PyTorch | ratio |"
        echo "|---|---|---|---|---|---|---|"
        for p in $precisions; do
            o=${ips_ours[$p]:--} e=${ips_eager[$p]:--} r=${ips_torch[$p]:--} g=${replayed[$p]:--}
            u=${ips_unfused[$p]:--}
            ratio=$(python3 -c "print('%.2f' % ($o / $r))" 2>/dev/null || echo "-")
            echo "| $p | $o | $g | $e | $u | $r | $ratio |"
        done
    fi
    if wants det || wants seg; then
        echo
        echo "images/s, fp32 training, synthetic data:"
        echo
        echo "| task | configuration | trickbench | PyTorch | ratio |"
        echo "|---|---|---|---|---|"
        for task in detection segmentation; do
            case $task in
            detection) wants det || continue; args=$det_args ;;
            *) wants seg || continue; args=$seg_args ;;
            esac
            o=${task_ours[$task]:--} r=${task_torch[$task]:--}
            ratio=$(python3 -c "print('%.2f' % ($o / $r))" 2>/dev/null || echo "-")
            echo "| $task | $args | $o | $r | $ratio |"
        done
    fi
} | tee "$out/summary.md"
