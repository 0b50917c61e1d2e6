#!/bin/sh
# The harness subcommands through the real binary: exit codes (sysexits) and
# messages for bad input, plan output, query/report/merge on an empty setup.
# No training happens here. Usage: cli_test.sh TRICKBENCH SOURCE_ROOT
set -u
tb=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

# expect CODE PATTERN -- COMMAND...: runs the command, checks its exit code and
# that stdout+stderr contain PATTERN (a fixed string)
expect() {
    code=$1 pattern=$2
    shift 3
    out=$("$@" 2>&1)
    got=$?
    if [ "$got" -ne "$code" ]; then
        echo "FAIL: '$*' exited $got, expected $code"; echo "$out"; fails=$((fails + 1))
    elif ! printf '%s' "$out" | grep -qF -- "$pattern"; then
        echo "FAIL: '$*' output lacks '$pattern'"; echo "$out"; fails=$((fails + 1))
    fi
}

printf '{\n  "name": "bad",\n  "base": {"tricks": {"mixup_alpah": 0.2}}\n}\n' > "$tmp/bad.json"
printf '{\n  "name": "syntax",\n  "seeds": [1, 2,]\n}\n' > "$tmp/syntax.json"

expect 0 "runs: 0 done, 8 pending" -- "$tb" plan "$src/matrices/quick.json" --db "$tmp/none.db"
expect 0 "shard 2/3" -- "$tb" plan "$src/matrices/quick.json" --db "$tmp/none.db" --shard 2/3
expect 0 "runs: 0 done, 8 pending" -- "$tb" run "$src/matrices/quick.json" --db "$tmp/none.db" --dry-run
expect 65 "unknown key 'tricks.mixup_alpah' (did you mean 'tricks.mixup_alpha'?)" -- "$tb" run "$tmp/bad.json" --db "$tmp/r.db"
expect 65 "syntax.json:3:18: invalid JSON" -- "$tb" plan "$tmp/syntax.json"
expect 66 "cannot open" -- "$tb" plan "$tmp/missing.json"
expect 64 "--shard: '3/2' is not i/n" -- "$tb" run "$src/matrices/quick.json" --shard 3/2
expect 64 "unknown option '--frobnicate'" -- "$tb" run "$src/matrices/quick.json" --frobnicate
expect 64 "--device: unknown device 'tpu'" -- "$tb" run "$src/matrices/quick.json" --device tpu
expect 66 "no results database here" -- "$tb" query --db "$tmp/none.db" "SELECT 1"
expect 66 "no results database here" -- "$tb" report --db "$tmp/none.db"
expect 64 "give the output database and at least one input" -- "$tb" merge "$tmp/out.db"
expect 64 "--format: 'xml' is not one of md, csv, json" -- "$tb" report --format xml
# a database with nothing run yet: merge creates it, query reads it, report says there is nothing
expect 66 "no results database here" -- "$tb" merge "$tmp/out.db" "$tmp/none.db"
expect 0 "|   1 |" -- "$tb" query --db "$tmp/out.db" "SELECT 1 AS one"
expect 64 "SQL error: no such table: nope" -- "$tb" query --db "$tmp/out.db" "SELECT * FROM nope"
expect 66 "no matrix recorded yet" -- "$tb" report --db "$tmp/out.db"
expect 0 "user_version" -- "$tb" query --db "$tmp/out.db" --format json "SELECT 1 AS user_version"

if [ "$fails" -ne 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "all CLI checks passed"
