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
#   usage: tools/gpu-check.sh OUTDIR [PACKDIR]
#
# With PACKDIR (the device call's $OUT, which returns at most 8 files), every
# step also refreshes PACKDIR/gpu-check-logs.tar.gz with all of OUTDIR, and
# the table goes to PACKDIR/summary.md: what ran comes back even when the call
# is stopped at its limit. The device call (`run`, carry .devdeps, timeout_s 600):
#   GPU_CHECK_COMMIT=$(git rev-parse --short=12 HEAD) tools/gpu-check.sh /tmp/gc $OUT
# with the commit written out here, where git works.
#
# Order: probe, the CLI and the cuda tests' build, the cuda suite, then for each
# precision PyTorch and trickbench side by side (the reference first: a hang of
# ours cannot cost it), then the variants (no CUDA graph, fp16 with BN + add +
# ReLU unfused), then detection and segmentation, then torch.compile (bf16
# only: a cold compile takes about a minute), then the rest of the build.
# Every step's limit is cut to what is left of GPU_CHECK_BUDGET, and a step
# that would get under 20 s is skipped and says so, so that the table is
# printed before the device call's own limit ends. The tests stop starting
# once less than GPU_CHECK_BENCH_RESERVE is left when benchmarks are wanted.
# A healthy benchmark takes 15-40 s; each gets at most 150 s.
#
# On a first run, or with little device time, split the work over two calls
# made while the machine is still warm (build-gpu is kept between them):
#   GPU_CHECK_STEPS="probe build test" ... then
#   GPU_CHECK_STEPS="bench torch det seg compile" ...
#
# Environment (all optional):
#   GPU_CHECK_STEPS  steps to run, default "probe build test bench torch det seg compile"
#                    (split a session's short device time across calls)
#   GPU_CHECK_BENCH_RESERVE seconds the tests leave for the benchmarks, default 250
#   GPU_CHECK_BUDGET seconds for the whole script, default 560 (a device call
#                    may run 600 s)
#   GPU_CHECK_COMMIT the commit tested, for the table (the tree copied to the
#                    device has no .git)
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
# Before the first run there: bring .devdeps (tools/pack-devdeps.sh: the
# shared pack-deps.sh plus nettle and oneDNN, less OpenBLAS) along; this
# script sources its env.sh.
# libxml2 does not fit there (its ICU is 36 MB of the 64 MiB that can be
# brought, and Debian's libxml2 headers include ICU's), so the build there is
# configured -Dlibxml2=disabled (GPU_CHECK_LIBXML2=auto to try): everything
# but reading VOC annotation XML, which neither the cuda suite nor the
# benchmarks need.
set -u

out=${1:?usage: tools/gpu-check.sh OUTDIR [PACKDIR]}
mkdir -p "$out" && out=$(cd "$out" && pwd)
pack=${2:-}
if [ -n "$pack" ]; then
    mkdir -p "$pack" && pack=$(cd "$pack" && pwd)
fi
cd "$(dirname "$0")/.." || exit 1
steps=${GPU_CHECK_STEPS:-probe build test bench torch det seg compile}
build=${BUILD_DIR:-build-gpu}
jobs=${JOBS:-16}
precisions=${PRECISIONS:-fp16 bf16 fp32}
bench_args=${BENCH_ARGS:---model resnet50 --variant D --batch 256 --image 224}
bench_steps=${BENCH_STEPS:---steps 20 --warmup 5 --repeats 3}
det_args=${DET_ARGS:---model resnet50 --variant D --stem imagenet --width 1 --batch 8 --image 608}
seg_args=${SEG_ARGS:---model resnet50 --variant D --stem imagenet --width 1 --batch 8 --image 480 --classes 150 --channels 3}
task_steps=${TASK_STEPS:---steps 10 --warmup 3 --repeats 3}
deadline=$(($(date +%s) + ${GPU_CHECK_BUDGET:-560}))
status_lines=()
last_ips=-
declare -A ips_ours ips_eager ips_unfused replayed ips_torch ips_compiled task_ours task_torch mem_ours mem_torch
bench_reserve=${GPU_CHECK_BENCH_RESERVE:-250}

wants() { case " $steps " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# run_step NAME LIMIT_SECONDS CMD...: full output to OUTDIR/NAME.log, its tail here.
# The limit is cut to the budget left (10 s kept for the table); under 20 s the
# step is skipped (status "no time left", return 124).
run_step() {
    local name=$1 limit=$2
    shift 2
    local log="$out/$name.log" t0 rc st left
    t0=$(date +%s)
    left=$((deadline - t0 - 10))
    if [ "$left" -lt 20 ]; then
        echo "== $name: skipped, no time left of GPU_CHECK_BUDGET" | tee -a "$out/commands.txt"
        status_lines+=("| $name | skipped | - | no time left of GPU_CHECK_BUDGET |")
        return 124
    fi
    [ "$limit" -gt "$left" ] && limit=$left
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
    pack_logs
    return $rc
}

# All of OUTDIR into one archive in PACKDIR (none without PACKDIR).
pack_logs() {
    [ -n "$pack" ] && tar czf "$pack/gpu-check-logs.tar.gz" -C "$out" . 2>/dev/null
    return 0
}

skip_step() { status_lines+=("| $1 | skipped | - | $2 |"); }

# images/s from the last JSON object of a log ("images_per_sec").
# json_field LOG KEY: KEY of the last JSON object line of LOG holding it ("-" if none)
json_field() {
    env LD_LIBRARY_PATH="${ld_orig:-}" python3 - "$1" "$2" <<'EOF' 2>/dev/null || echo "-"
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
# GPU memory in use after the timed steps (device_used_bytes: cudaMemGetInfo's
# total - free, the CUDA context included, the same key on both sides), GiB
device_gib() {
    local b
    b=$(json_field "$1" device_used_bytes)
    awk -v b="$b" 'BEGIN { if (b ~ /^[0-9]+$/) printf "%.1f", b / 1073741824; else print "-" }'
}

# ---- environment: brought libraries, cuDNN location ------------------------
# meson and ninja may be pip packages beside python3 (the device's image)
py_bin=$(python3 -c 'import os, sys; print(os.path.dirname(sys.executable))' 2>/dev/null)
[ -n "$py_bin" ] && export PATH="$PATH:$py_bin"
# the PyTorch steps run with the loader path as it was, not with .devdeps' libraries
ld_orig=${LD_LIBRARY_PATH:-}
if [ -f .devdeps/env.sh ]; then
    # shellcheck disable=SC1091
    . .devdeps/env.sh
    echo "sourced .devdeps/env.sh"
fi
meson_opts=(-Dlibxml2="${GPU_CHECK_LIBXML2:-disabled}")
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
        meson_opts+=(-Dcudnn_include="$d/include" -Dcudnn_lib=/tmp/cudnn/lib)
        export LD_LIBRARY_PATH="$d/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        echo "cuDNN from pip: $d"
    else
        echo "cuDNN headers not found (toolkit, /usr/include, pip nvidia.cudnn)"
    fi
fi
export PATH="${CUDA_HOME:-/usr/local/cuda}/bin:$PATH"
# the toolkit's libcudart / libcublas at run time (pip's cuDNN is elsewhere)
cuda_root=$(dirname "$(dirname "$(command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)")")
export LD_LIBRARY_PATH="$cuda_root/lib64:$cuda_root/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# ---- probe -----------------------------------------------------------------
if wants probe; then
    probe=.devdeps/probe.sh
    [ -f "$probe" ] || probe=../shared/device/probe.sh
    if [ -f "$probe" ]; then
        run_step probe 60 bash "$probe"
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
            --buildtype=release "${meson_opts[@]}"
    else
        run_step configure 180 meson setup "$build" -Dcuda=enabled -Dsm_archs=90 --buildtype=release \
            "${meson_opts[@]}"
    fi
    [ -f "$build/meson-logs/meson-log.txt" ] && cp "$build/meson-logs/meson-log.txt" "$out/meson-log.txt"
    # Meson 1.0 asks nvcc for no dependency files, so ninja does not see a
    # header change under a .cu file (a rerun after a fix would link objects
    # built against the old structs): drop every CUDA object older than the
    # newest header.
    newest=$(find kernels tests/cuda \( -name '*.h' -o -name '*.cuh' \) -printf '%T@ %p\n' | sort -n | tail -n 1 | cut -d' ' -f2-)
    find "$build" -name '*.cu.o' ! -newer "$newest" -delete
    # the CLI, then the cuda suite's programs (an unknown target, e.g. without
    # cmocka, must not stop the CLI's build); the rest of the build comes last
    run_step build-cli 600 ninja -C "$build" -j"$jobs" trickbench
    run_step build-cuda 600 ninja -C "$build" -j"$jobs" tests/cuda/test_cuda_layers \
        tests/cuda/test_cuda_util_ops tests/cuda/test_cuda_train tests/cuda/test_cuda_host \
        tests/cuda/test_cuda_detection tests/cuda/test_cuda_box_targets tests/cuda/test_cuda_box_nms \
        tests/cuda/test_cuda_resize
    # shellcheck disable=SC2016 # $1 is the inner shell's
    run_step version 60 sh -c '"$1" version; echo "libraries not found:"; ldd "$1" | grep "not found"; true' \
        sh "$build/trickbench"
fi

# ---- cuda test suite ---------------------------------------------------------
# Each program of the suite on its own (the suite `cuda` of tests/cuda/meson.build),
# most telling first: a status line each, and a hang costs one limit, not all.
if wants test; then
    keep=0
    if wants bench || wants torch; then
        keep=$bench_reserve
    fi
    for t in test_cuda_layers test_cuda_util_ops test_cuda_train test_cuda_resize test_cuda_detection \
        test_cuda_box_targets test_cuda_box_nms test_cuda_host; do
        if [ ! -x "$build/tests/cuda/$t" ]; then
            skip_step "$t" "not built"
        elif [ $((deadline - $(date +%s))) -lt $((keep + 30)) ]; then
            skip_step "$t" "the rest of GPU_CHECK_BUDGET is kept for the benchmarks"
        else
            # the host-side test takes its GPU branch here (backend created and named);
            # TB_REQUIRE_GPU: here a GPU the tests cannot use fails them (no skip)
            run_step "$t" 150 env TB_REQUIRE_GPU=1 "$build/tests/cuda/$t"
        fi
    done
fi

# ---- benchmarks: per precision ours then PyTorch, then the variants ---------
have_bench=false
if [ -x "$build/trickbench" ] && "$build/trickbench" bench --help >/dev/null 2>&1; then
    have_bench=true
fi
# bench_ours NAME PRECISION [ENV=VALUE ...]: one trickbench benchmark; its
# images/s in last_ips (not printed: run_step must run in this shell to record
# its status line)
bench_ours() {
    local name=$1 p=$2
    shift 2
    # shellcheck disable=SC2086
    run_step "$name" 150 env "$@" "$build/trickbench" bench $bench_args --precision "$p" --device cuda \
        $bench_steps --json
    last_ips=$(images_per_sec "$out/$name.log")
}
if wants bench && ! $have_bench; then
    skip_step bench "no trickbench binary with a bench command"
fi
if wants torch && [ ! -f bench/pytorch_bench.py ]; then
    skip_step torch "bench/pytorch_bench.py not found"
fi
for p in $precisions; do
    if wants torch && [ -f bench/pytorch_bench.py ]; then
        # shellcheck disable=SC2086
        run_step "torch-$p" 150 env LD_LIBRARY_PATH="$ld_orig" python3 bench/pytorch_bench.py $bench_args --precision "$p" --device cuda \
            $bench_steps --json
        ips_torch[$p]=$(images_per_sec "$out/torch-$p.log")
        mem_torch[$p]=$(device_gib "$out/torch-$p.log")
    fi
    if wants bench && $have_bench; then
        bench_ours "bench-$p" "$p"
        ips_ours[$p]=$last_ips
        mem_ours[$p]=$(device_gib "$out/bench-$p.log")
        # steps replayed from the captured CUDA graph, of all steps run
        replayed[$p]="$(json_field "$out/bench-$p.log" steps_replayed)/$(json_field "$out/bench-$p.log" steps_run), $(json_field "$out/bench-$p.log" steps_skipped) skipped"
    fi
done
if wants bench && $have_bench; then
    for p in $precisions; do
        # fp16 is where cuDNN's fused BN + add + ReLU runs: the same step with the
        # three ops apart (what the fusion buys)
        if [ "$p" = fp16 ]; then
            bench_ours "bench-$p-unfused" "$p" TRICKBENCH_NO_FUSE=1
            ips_unfused[$p]=$last_ips
        fi
        # the same step op by op, without the CUDA graph (what the capture buys)
        bench_ours "bench-$p-eager" "$p" TRICKBENCH_NO_CAPTURE=1
        ips_eager[$p]=$last_ips
    done
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
        run_step "$task-trickbench" 150 "$build/trickbench" bench --task "$task" $args --device cuda \
            $task_steps --json
        task_ours[$task]=$(images_per_sec "$out/$task-trickbench.log")
    else
        skip_step "$task-trickbench" "no trickbench binary with bench --task $task"
    fi
    if [ -f "$ref" ]; then
        # shellcheck disable=SC2086
        run_step "$task-torch" 150 env LD_LIBRARY_PATH="$ld_orig" python3 "$ref" $args --device cuda $task_steps --json
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
# ---- torch.compile: the second reference, bf16 (its cold compile is in the warm-up) ----
if wants compile && [ -f bench/pytorch_bench.py ]; then
    # shellcheck disable=SC2086
    run_step torch-bf16-compiled 200 env LD_LIBRARY_PATH="$ld_orig" python3 bench/pytorch_bench.py $bench_args \
        --precision bf16 --device cuda $bench_steps --compile --json
    ips_compiled[bf16]=$(images_per_sec "$out/torch-bf16-compiled.log")
fi
# everything else (CPU tests, tools): that it all builds there too
if wants build; then
    run_step build-all 600 ninja -C "$build" -j"$jobs"
fi

# ---- the short table, last -----------------------------------------------------
{
    echo
    gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
    echo "## gpu-check $(date -u +%Y-%m-%dT%H:%MZ) on ${gpu:-no GPU}"
    if commit=$(git rev-parse --short=12 HEAD 2>/dev/null); then
        git diff --quiet 2>/dev/null || commit="$commit (modified)"
    else
        commit=${GPU_CHECK_COMMIT:-unknown}
    fi
    echo "git $commit; logs in $out"
    echo
    echo "| step | status | time | note |"
    echo "|---|---|---|---|"
    printf '%s\n' "${status_lines[@]}"
    if wants bench || wants torch; then
        echo
        echo "images/s, $bench_args, synthetic data:"
        echo
        echo "| precision | trickbench | steps replayed/run, skipped | trickbench op by op | BN, add, ReLU unfused | PyTorch | ratio | PyTorch compiled | ratio | GPU GiB trickbench / PyTorch |"
        echo "|---|---|---|---|---|---|---|---|---|---|"
        for p in $precisions; do
            o=${ips_ours[$p]:--} e=${ips_eager[$p]:--} r=${ips_torch[$p]:--} g=${replayed[$p]:--}
            u=${ips_unfused[$p]:--} c=${ips_compiled[$p]:--}
            ratio=$(env LD_LIBRARY_PATH="$ld_orig" python3 -c "print('%.2f' % ($o / $r))" 2>/dev/null || echo "-")
            cratio=$(env LD_LIBRARY_PATH="$ld_orig" python3 -c "print('%.2f' % ($o / $c))" 2>/dev/null || echo "-")
            echo "| $p | $o | $g | $e | $u | $r | $ratio | $c | $cratio | ${mem_ours[$p]:--} / ${mem_torch[$p]:--} |"
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
            ratio=$(env LD_LIBRARY_PATH="$ld_orig" python3 -c "print('%.2f' % ($o / $r))" 2>/dev/null || echo "-")
            echo "| $task | $args | $o | $r | $ratio |"
        done
    fi
} | tee "$out/summary.md"
if [ -n "$pack" ]; then
    cp "$out/summary.md" "$pack/summary.md"
    pack_logs
fi
