#!/bin/sh
# A tiny matrix end to end through the real binary and the real classification
# trainer (synthetic data, a narrow ResNet-18, one epoch): run, report, plan,
# rerun (nothing to do), query, merge. Usage: cli_e2e.sh TRICKBENCH
set -u
tb=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

cat > "$tmp/tiny.json" <<'JSON'
{
  "name": "tiny",
  "description": "two rows on synthetic data",
  "base": {
    "data": {"dataset": "synthetic", "synthetic_train": 256, "synthetic_val": 64},
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
"$tb" merge "$tmp/m.db" "$tmp/r.db" | grep -qF "2 runs added" || fail "merge"
"$tb" report --db "$tmp/m.db" --format json | grep -qF '"label":	"+ label smoothing"' || fail "report json"
echo "end to end: ok"
