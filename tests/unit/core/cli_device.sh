#!/bin/sh
# --device cuda where no GPU is usable: a clear error (exit 70) before any
# run starts, so the database is not even created; auto falls back to the CPU;
# bench --json counts its steps and names the CPU's oneDNN kernels. Skipped (77)
# when a GPU is usable.
set -u
tb="$1"; root="$2"
if "$tb" version | grep -q '^gpu: available'; then exit 77; fi
dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT
"$tb" run "$root/matrices/quick.json" --db "$dir/r.db" --device cuda 2> "$dir/err"
rc=$?
[ "$rc" -eq 70 ] || { echo "expected exit 70, got $rc"; cat "$dir/err"; exit 1; }
grep -q "asks for the GPU but none is usable" "$dir/err" || { echo "unclear message:"; cat "$dir/err"; exit 1; }
[ ! -e "$dir/r.db" ] || { echo "the database was created"; exit 1; }
# auto falls back to the CPU and says so
"$tb" bench --model resnet18 --width 0.125 --image 16 --channels 1 --classes 4 --batch 2 --steps 1 \
  --warmup 0 --repeats 1 --threads 1 --device auto 2> "$dir/err2" > /dev/null || { cat "$dir/err2"; exit 1; }
grep -q "device auto: picked cpu" "$dir/err2" || { echo "auto did not say what it picked:"; cat "$dir/err2"; exit 1; }
# --json counts the steps (warm-up included); the CPU replays none from a capture
json=$("$tb" bench --model resnet18 --width 0.125 --image 16 --channels 1 --classes 4 --batch 2 --steps 1 \
  --warmup 1 --repeats 2 --threads 1 --device cpu --json 2> "$dir/err3") || { cat "$dir/err3"; exit 1; }
echo "$json" | grep -q '"steps_run": 3, "steps_replayed": 0, "steps_skipped": 0}' || { echo "bench --json: $json"; exit 1; }
# the oneDNN version and instruction set, in bench --json and in version (the same text)
gemm=$(echo "$json" | sed -n 's/.*"cpu_gemm": "\(oneDNN [0-9.]*, [a-z0-9_]*\)".*/\1/p')
[ -n "$gemm" ] || { echo "bench --json names no cpu_gemm: $json"; exit 1; }
"$tb" version | grep -q "^cpu gemm: $gemm kernels" || { echo "version:"; "$tb" version; exit 1; }
# told to stay with SSE4.1 (every x86-64 CPU oneDNN runs on has it), version says so
ONEDNN_MAX_CPU_ISA=SSE41 "$tb" version | grep -q "^cpu gemm: oneDNN [0-9.]*, sse41 kernels" ||
  { echo "ONEDNN_MAX_CPU_ISA=SSE41:"; ONEDNN_MAX_CPU_ISA=SSE41 "$tb" version; exit 1; }
echo ok
