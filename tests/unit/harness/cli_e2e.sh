#!/bin/sh
# A tiny matrix end to end through the real binary and the real classification
# trainer (synthetic data, a narrow ResNet-18, one epoch): run, report, plan,
# rerun (nothing to do), query, eval of the saved weights, merge. Usage: cli_e2e.sh TRICKBENCH
set -u
tb=$(cd "$(dirname "$1")" && pwd)/$(basename "$1") # absolute: the script changes directory
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

cat > "$tmp/tiny.json" <<'JSON'
{
  "name": "tiny",
  "description": "two rows on synthetic data",
  "base": {
    "data": {"dataset": "synthetic", "synthetic_train": 256, "synthetic_val": 70},
    "model": {"name": "resnet18", "stem": "small", "width": 0.125},
    "optim": {"lr": 0.05, "batch": 32, "epochs": 1},
    "device": "cpu"
  },
  "rows": [
    {"label": "baseline"},
    {"label": "+ label smoothing", "set": {"tricks.label_smoothing": 0.1}}
  ],
  "seeds": [1]
}
JSON

"$tb" run "$tmp/tiny.json" --db "$tmp/r.db" --threads 2 > "$tmp/out.txt" 2> "$tmp/err.txt" || {
    cat "$tmp/err.txt"; fail "run exited $?"; }
grep -qF "## tiny" "$tmp/out.txt" || fail "no report after the run"
grep -qF "| + label smoothing |   1 |" "$tmp/out.txt" || { cat "$tmp/out.txt"; fail "report row missing"; }
grep -qF "(seed 1): finished" "$tmp/err.txt" || { cat "$tmp/err.txt"; fail "no progress lines on stderr"; }
"$tb" plan "$tmp/tiny.json" --db "$tmp/r.db" | tail -1 | grep -qxF "2 runs: 2 done, 0 pending" || fail "plan after run"
"$tb" run "$tmp/tiny.json" --db "$tmp/r.db" --quiet > /dev/null 2> "$tmp/err2.txt" || fail "second run"
grep -qF "0 finished now, 2 already done" "$tmp/err2.txt" || { cat "$tmp/err2.txt"; fail "second run trained again"; }
n=$("$tb" query --db "$tmp/r.db" --format csv "SELECT count(*) AS n FROM epochs" | tail -1)
[ "$n" = "2" ] || fail "expected 2 epochs, got $n"
v=$("$tb" query --db "$tmp/r.db" --format csv \
    "SELECT count(*) FROM metrics WHERE name IN ('top1', 'epoch_seconds_median') AND value > 0" | tail -1)
[ "$v" = "4" ] || fail "expected top1 and epoch_seconds_median for 2 runs, got $v"
# eval: the saved weights score what each run recorded; flip TTA recorded as metrics
"$tb" eval --matrix tiny --db "$tmp/r.db" --threads 2 > "$tmp/eval.md" 2> "$tmp/eval.err" || {
    cat "$tmp/eval.err"; fail "eval exited $?"; }
rows=$(grep -c '^| + label smoothing \|^| baseline ' "$tmp/eval.md")
[ "$rows" = "2" ] || { cat "$tmp/eval.md"; fail "eval: expected 2 rows, got $rows"; }
# columns: label, seed, run, images, recorded top1, loss, top1, top5 (70 images: a partial last batch)
same=$(awk -F'|' '/^\| (baseline|\+ label smoothing) / { for (i = 5; i <= 8; i++) gsub(/ /, "", $i);
                  if ($5 == "70" && $6 == $8 && $6 != "") n++ } END { print n + 0 }' "$tmp/eval.md")
[ "$same" = "2" ] || { cat "$tmp/eval.md"; fail "eval: the saved weights do not score the recorded top1"; }
losses=$("$tb" query --db "$tmp/r.db" --format csv \
    "SELECT printf('%.4f', e.val_loss) FROM epochs e JOIN matrix_runs mr ON mr.run_id = e.run_id ORDER BY mr.row" |
    tail -n +2 | tr '\n' ' ')
got=$(awk -F'|' '/^\| (baseline|\+ label smoothing) / { gsub(/ /, "", $7); printf "%s ", $7 }' "$tmp/eval.md")
[ "$got" = "$losses" ] || fail "eval: losses '$got', the runs recorded '$losses'"
"$tb" eval --matrix tiny --db "$tmp/r.db" --threads 2 --tta flip --record > "$tmp/flip.md" 2> /dev/null ||
    fail "eval --tta flip --record"
grep -qF "top1 (flip TTA)" "$tmp/flip.md" || { cat "$tmp/flip.md"; fail "eval --tta flip: no flip column"; }
# a mirror image that changed nothing would leave every loss as it was
flipped=$(awk -F'|' '/^\| (baseline|\+ label smoothing) / { gsub(/ /, "", $7); printf "%s ", $7 }' "$tmp/flip.md")
[ "$flipped" != "$losses" ] || fail "eval --tta flip: the same losses as without TTA ($flipped)"
v=$("$tb" query --db "$tmp/r.db" --format csv \
    "SELECT count(*) FROM metrics WHERE name IN ('top1_flip', 'top5_flip') AND value BETWEEN 0 AND 100" | tail -1)
[ "$v" = "4" ] || fail "eval --record: expected top1_flip and top5_flip for 2 runs, got $v"
"$tb" report --db "$tmp/r.db" --matrix tiny --metrics top1,top1_flip > "$tmp/flip_report.md" || fail "report of top1_flip"
grep -qF "top1_flip: top-1 with flip test-time augmentation" "$tmp/flip_report.md" &&
    awk -F'|' '/^\| baseline / { gsub(/ /, "", $7); ok = $7 ~ /^[0-9]+\.[0-9][0-9]$/ } END { exit !ok }' \
        "$tmp/flip_report.md" ||
    { cat "$tmp/flip_report.md"; fail "report --metrics top1,top1_flip"; }
"$tb" eval --matrix nope --db "$tmp/r.db" > /dev/null 2> "$tmp/e1.txt" && fail "eval of an unknown matrix succeeded"
grep -qF "no finished run of matrix 'nope'" "$tmp/e1.txt" || { cat "$tmp/e1.txt"; fail "eval: unknown matrix message"; }
"$tb" eval --matrix tiny --db "$tmp/r.db" --record > /dev/null 2> "$tmp/e2.txt" && fail "eval --record without flip"
grep -qF -- "--record stores flip scores" "$tmp/e2.txt" || { cat "$tmp/e2.txt"; fail "eval --record message"; }
# one checkpoint missing: that run gets dashes and its error, the other is scored, the exit status is not 0
ck=$("$tb" query --db "$tmp/r.db" --format csv "SELECT checkpoint FROM runs ORDER BY id LIMIT 1" | tail -1)
mv "$ck" "$tmp/moved.safetensors"
"$tb" eval --matrix tiny --db "$tmp/r.db" > "$tmp/o3.md" 2> "$tmp/e3.txt" && fail "eval without the checkpoint file"
grep -qF "$ck" "$tmp/e3.txt" || { cat "$tmp/e3.txt"; fail "eval: the missing checkpoint is not named"; }
grep -qE '^\| baseline .*\| +— \| +— \| +— \|$' "$tmp/o3.md" && grep -qE '^\| \+ label smoothing .*\| +70 \|' "$tmp/o3.md" ||
    { cat "$tmp/o3.md"; fail "eval: one missing checkpoint should leave the other run scored"; }
mv "$tmp/moved.safetensors" "$ck"
# a relative --db from another directory: the checkpoints beside the database
mkdir "$tmp/rel" "$tmp/elsewhere"
(cd "$tmp/rel" && "$tb" run "$tmp/tiny.json" --db r.db --threads 2 --quiet > /dev/null 2>&1) || fail "run with a relative --db"
(cd "$tmp/elsewhere" && "$tb" eval --matrix tiny --db ../rel/r.db --threads 2 > /dev/null 2> "$tmp/e4.txt") ||
    { cat "$tmp/e4.txt"; fail "eval of a relative --db from another directory"; }
# an EMA run's checkpoint holds the averaged weights it was scored with
sed -e 's/"name": "tiny"/"name": "tiny-ema"/' -e 's/"tricks.label_smoothing": 0.1/"tricks.ema": 0.9/' \
    -e 's/"label": "+ label smoothing"/"label": "+ EMA"/' \
    "$tmp/tiny.json" > "$tmp/ema.json"
"$tb" run "$tmp/ema.json" --db "$tmp/ema.db" --threads 2 --quiet > /dev/null 2> "$tmp/ema.err" || {
    cat "$tmp/ema.err"; fail "EMA run"; }
"$tb" eval --matrix tiny-ema --label "+ EMA" --db "$tmp/ema.db" --threads 2 > "$tmp/ema.md" 2> /dev/null ||
    fail "eval of the EMA run"
same=$(awk -F'|' '/^\| \+ EMA / { gsub(/ /, "", $6); gsub(/ /, "", $8); if ($6 == $8 && $6 != "") n++ }
                  END { print n + 0 }' "$tmp/ema.md")
[ "$same" = "1" ] || { cat "$tmp/ema.md"; fail "eval: the EMA run's checkpoint does not score its recorded top1"; }
"$tb" merge "$tmp/m.db" "$tmp/r.db" | grep -qF "2 runs added" || fail "merge"
"$tb" report --db "$tmp/m.db" --format json | grep -qF '"label":	"+ label smoothing"' || fail "report json"
echo "end to end: ok"
