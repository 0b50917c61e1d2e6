#!/bin/sh
# The committed matrices under matrices/paper (ImageNet scale) and
# matrices/fashion (Fashion-MNIST scale): each expands without error to the
# number of runs hard-coded below (so a change that alters a matrix's size is
# noticed), every file is listed here, and each paper matrix records the
# paper's published number (top-1, or mAP for detection) for its baseline row. Nothing is trained: the paper
# matrices are run on a copy whose data.root does not exist, so every run
# stops at once and the matrix, its baseline and reference land in a scratch
# database, where they are read back as trickbench stored them.
# Usage: test_paper_matrices.sh TRICKBENCH SOURCE_ROOT
set -u
tb=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# file (relative to matrices/) and its run count
expected_runs() {
    case $1 in
    paper/table3-efficient.json) echo 6 ;;      # 3 networks x {baseline, efficient}, 1 seed
    paper/table4-heuristics.json) echo 10 ;;    # 2 batch sizes x 5 cumulative steps, 1 seed
    paper/table5-tweaks.json) echo 4 ;;         # ResNet-50 variants A-D, 1 seed
    paper/table6-refinements.json) echo 19 ;;   # 3 networks x 6 refinements + the teacher, 1 seed
    fashion/table3-efficient.json) echo 18 ;;   # 3 networks x 2 settings x 3 seeds
    fashion/table4-heuristics.json) echo 30 ;;  # 2 batch sizes x 5 steps x 3 seeds
    fashion/table5-tweaks.json) echo 12 ;;      # 4 variants x 3 seeds
    fashion/table6-refinements.json) echo 57 ;; # (3 networks x 6 refinements + the teacher) x 3 seeds
    fashion/best.json) echo 3 ;;                # 1 configuration x 3 seeds
    paper/table8-voc.json) echo 7 ;;            # 7 backbones, 1 seed
    fashion/detection.json) echo 18 ;;          # 6 backbones x 3 seeds
    paper/table9-ade20k.json) echo 7 ;;         # 7 backbones, 1 seed
    fashion/segmentation.json) echo 18 ;;       # 6 backbones x 3 seeds
    *) echo "" ;;
    esac
}

# paper file, its baseline row, the metric and the paper's value for that row
baseline_reference() {
    case $1 in
    paper/table3-efficient.json) echo "ResNet-50, baseline|top1|75.87" ;;      # Table 3
    paper/table4-heuristics.json) echo "BS=256, Linear scaling|top1|75.87" ;;  # Table 4
    paper/table5-tweaks.json) echo "ResNet-50|top1|75.87" ;;                   # Table 5
    paper/table6-refinements.json) echo "ResNet-50-D, Efficient|top1|77.16" ;; # Table 6
    paper/table8-voc.json) echo "B-standard|mAP|77.54" ;;                      # Table 8
    paper/table9-ade20k.json) echo "B-standard|miou|37.05" ;;                  # Table 9
    *) echo "" ;;
    esac
}

# what stops a paper matrix's first run on this machine: the missing dataset
# root, or (detection) the classification run its backbone comes from
expected_stop() {
    case $1 in
    paper/table8-voc.json | paper/table9-ade20k.json) echo "has no run 'ResNet-50, baseline'" ;;
    *) echo "no-imagenet-here' does not exist" ;;
    esac
}

seen=0
for path in "$src"/matrices/paper/*.json "$src"/matrices/fashion/*.json; do
    [ -e "$path" ] || continue
    rel=${path#"$src"/matrices/}
    seen=$((seen + 1))
    want=$(expected_runs "$rel")
    if [ -z "$want" ]; then
        fail "$rel is not listed in $0: add its run count"
        continue
    fi
    if ! out=$("$tb" plan "$path" --db "$tmp/none.db" 2>&1); then
        fail "trickbench plan $rel failed:"; echo "$out"
        continue
    fi
    if ! printf '%s\n' "$out" | grep -qxF "$want runs: 0 done, $want pending"; then
        fail "$rel: expected $want runs, plan says: $(printf '%s\n' "$out" | tail -n 1)"
    fi
done
# every file listed above exists (a renamed or deleted matrix is noticed too)
for rel in paper/table3-efficient.json paper/table4-heuristics.json paper/table5-tweaks.json \
           paper/table6-refinements.json fashion/table3-efficient.json fashion/table4-heuristics.json \
           fashion/table5-tweaks.json fashion/table6-refinements.json fashion/best.json \
           paper/table8-voc.json fashion/detection.json paper/table9-ade20k.json fashion/segmentation.json; do
    [ -f "$src/matrices/$rel" ] || fail "matrices/$rel is missing"
done
[ "$seen" -ge 13 ] || fail "found $seen matrix files under matrices/paper and matrices/fashion, expected 13"

for path in "$src"/matrices/paper/*.json; do
    rel=${path#"$src"/matrices/}
    spec=$(baseline_reference "$rel")
    [ -n "$spec" ] || { fail "$rel has no published baseline value listed in $0"; continue; }
    label=${spec%%|*}
    metric=${spec#*|}
    metric=${metric%|*}
    value=${spec##*|}
    # the ImageNet root is the user's: committed paper matrices leave it empty
    if [ "$(grep -c '"root": ""' "$path")" -ne 1 ]; then
        fail "$rel: expected exactly one '\"root\": \"\"' (the user sets data.root)"
        continue
    fi
    name=$(basename "$rel" .json)
    sed 's|"root": ""|"root": "'"$tmp"'/no-imagenet-here"|' "$path" > "$tmp/$name.json"
    db="$tmp/$name.db"
    "$tb" run "$tmp/$name.json" --db "$db" --device cpu --threads 1 --quiet > "$tmp/$name.out" 2>&1
    if ! grep -qF "$(expected_stop "$rel")" "$tmp/$name.out"; then
        fail "$rel: running without the data did not stop where expected ($(expected_stop "$rel")):"
        cat "$tmp/$name.out"
        continue
    fi
    sql="SELECT count(*) FROM matrices WHERE baseline = '$label'
         AND json_extract(reference, '\$.\"$label\".$metric') = $value"
    got=$("$tb" query --db "$db" --format csv "$sql" 2>&1 | tail -n 1)
    if [ "$got" != 1 ]; then
        fail "$rel: expected baseline '$label' with reference $metric $value; recorded:"
        "$tb" query --db "$db" "SELECT name, baseline, reference FROM matrices"
    fi
done

if [ "$fails" -ne 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "all paper and fashion matrices expand as expected"
