#!/usr/bin/env bash
# End-to-end timing of dicegrad against gzip and the memory-bandwidth floor, in one run.
#
#   bash benches/e2e.sh [WORKDIR] [REPEATS]
#
# First the decoder floor: three cases made with `dicegrad synth --trained` (logits like a trained
# network's, gzip level 6, as real predictions compress): the 197×233×189 × 4 probability map, the
# same case's logits (`--activation softmax`) and a 256³ binary probability map; for each, median of
# REPEATS runs: `gzip -dc`, one libdeflate decode of the whole file on one thread
# (examples/libdeflate_floor.rs: the single-thread decoder floor) and `dicegrad analyze`, with the
# ratios of analyze to both.
#
# Then three synthetic cases with `dicegrad synth` (a 256³ binary probability map, a 4-channel
# 197×233×189 map, and a ~100-million-voxel binary map, all float32 with noise, gzip level 1), and
# measures for each, median of REPEATS runs: `gzip -dc` of the prediction; `dicegrad analyze`
# (report only); `analyze --out` (every picture and report.html: what they add); `analyze --grad-out
# g.nii.gz`; and, in one process (examples/passes.rs), loading,
# one plain pass over the decoded prediction, and the work after loading on 1 and on all threads;
# and, for the first two, the same with the logits file (sigmoid / softmax); then `track` over 50
# checkpoints of the 4-channel case against 50 `analyze` runs; and `batch` over 40 cases of
# 128³ × 3 (noisy, gzip level 1). With OLD=path/to/another/dicegrad, the floor cases and the batch
# are also run with that binary, in the same run, for a before/after comparison.
# Wall time and peak RSS come from /usr/bin/time. If python3 with nibabel and numpy is available,
# benches/python_route.py times the same job done the usual way.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-/tmp/dicegrad-bench}
REPEATS=${2:-3}
cargo build --release --quiet --bin dicegrad --example passes --example libdeflate_floor
B=target/release/dicegrad
P=target/release/examples/passes
F=target/release/examples/libdeflate_floor
OLD=${OLD:-}
# PARTS chooses what runs, any of: floor cases batch track (all by default)
PARTS=${PARTS:-floor cases batch track}
has() { [[ " $PARTS " == *" $1 "* ]]; }
mkdir -p "$WORK"

make_case() { # name classes shape
  [ -f "$WORK/$1/probs.nii.gz" ] || "$B" synth --out "$WORK/$1" --classes "$2" --shape "$3" --seed 7 --compression 1 --force 2>/dev/null
}
if has cases || has track; then
  make_case bin256 2 256,256,256
  make_case mc4 4 197,233,189
fi
has cases && make_case bin100m 2 464,464,464

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
measure() { # label command...: prints "label median_wall_s median_peak_MB"
  local label=$1; shift
  local walls=() mems=()
  for _ in $(seq "$REPEATS"); do
    /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$@" > /dev/null 2>&1
    read -r w m < "$WORK/time.txt"
    walls+=("$w"); mems+=("$m")
  done
  printf '%-34s %8.3f s %9.1f MB\n' "$label" "$(printf '%s\n' "${walls[@]}" | median)" \
    "$(printf '%s\n' "${mems[@]}" | median | awk '{print $1/1024}')"
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; $(uname -m)"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

# median wall time of a command, in seconds
wall() {
  local walls=()
  for _ in $(seq "$REPEATS"); do
    /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$@" > /dev/null 2>&1
    walls+=("$(cut -d' ' -f1 "$WORK/time.txt")")
  done
  printf '%s\n' "${walls[@]}" | median
}

# The decoder floor, on predictions that compress as real ones do.
if has floor; then
  [ -f "$WORK/mc4t/probs.nii.gz" ] || "$B" synth --out "$WORK/mc4t" --classes 4 --shape 197,233,189 --seed 7 --trained --force 2>/dev/null
  [ -f "$WORK/bin256t/probs.nii.gz" ] || "$B" synth --out "$WORK/bin256t" --classes 2 --shape 256,256,256 --seed 7 --trained --force 2>/dev/null
fi
if has floor; then
  echo "== decoder floor (synth --trained, gzip level 6): medians of $REPEATS"
  printf '%-28s %9s %9s %9s %9s %9s %12s\n' case ".nii.gz" "gzip -dc" floor analyze "/floor" "/gzip -dc"
  for c in "mc4t probs" "mc4t logits" "bin256t probs"; do
    set -- $c
    PR="$WORK/$1/$2.nii.gz"; L="$WORK/$1/labels.nii.gz"
    ACT=(); [ "$2" = logits ] && ACT=(--activation softmax)
    g=$(wall gzip -dc "$PR"); f=$(wall "$F" "$PR"); a=$(wall "$B" analyze --labels "$L" --pred "$PR" "${ACT[@]}")
    printf '%-28s %9s %8.3fs %8.3fs %8.3fs %9s %12s\n' "$1 $2" "$(du -h "$PR" | cut -f1)" "$g" "$f" "$a" \
      "$(ratio "$a" "$f")" "$(ratio "$a" "$g")"
    if [ -n "$OLD" ]; then
      o=$(wall "$OLD" analyze --labels "$L" --pred "$PR" "${ACT[@]}")
      printf '%-28s %9s %9s %9s %8.3fs %9s %12s\n' "  (OLD)" "" "" "" "$o" "$(ratio "$o" "$f")" "$(ratio "$o" "$g")"
    fi
    measure "  analyze: peak memory" "$B" analyze --labels "$L" --pred "$PR" "${ACT[@]}"
  done
fi
for c in $(has cases && echo bin256 mc4 bin100m); do
  L="$WORK/$c/labels.nii.gz"; PR="$WORK/$c/probs.nii.gz"
  echo "== $c: $(du -h "$PR" | cut -f1) prediction"
  measure "gzip -dc prediction" gzip -dc "$PR"
  measure "analyze (report only)" "$B" analyze --labels "$L" --pred "$PR"
  measure "analyze --out (pictures, HTML)" "$B" analyze --labels "$L" --pred "$PR" --out "$WORK/out" --force
  measure "analyze --grad-out .nii.gz" "$B" analyze --labels "$L" --pred "$PR" --grad-out "$WORK/g.nii.gz" --force
  "$P" "$L" "$PR" none "$REPEATS"
  if [ "$c" != bin100m ]; then # the same case as logits (sigmoid for one channel, softmax for four)
    LG="$WORK/$c/logits.nii.gz"; ACT=$([ "$c" = mc4 ] && echo softmax || echo sigmoid)
    measure "gzip -dc logits" gzip -dc "$LG"
    measure "analyze logits --activation $ACT" "$B" analyze --labels "$L" --pred "$LG" --activation "$ACT"
    measure "  the same, --out (pictures, HTML)" "$B" analyze --labels "$L" --pred "$LG" --activation "$ACT" \
      --out "$WORK/out" --force
    "$P" "$L" "$LG" "$ACT" "$REPEATS"
  fi
  if python3 -c "import nibabel, numpy" 2> /dev/null; then
    measure "python: nibabel + numpy" python3 benches/python_route.py "$L" "$PR"
  fi
done

# A training run of 50 checkpoints of the 4-channel case: `track` over 50 predictions against 50
# `analyze` runs one after the other (the predictions are links to one file, so that both read
# the same bytes from the page cache; every step is decoded and analysed in full).
if has batch; then
  # A data set: 40 cases of 128³ × 3 classes, noisy, gzip level 1 (docs/performance.md).
  if [ ! -f "$WORK/b40/preds/case_39.nii.gz" ]; then
    mkdir -p "$WORK/b40/labels" "$WORK/b40/preds"
    for i in $(seq -w 0 39); do
      "$B" synth --out "$WORK/b40/s" --seed "$i" --classes 3 --shape 128,128,128 --compression 1 --force 2>/dev/null
      mv "$WORK/b40/s/labels.nii.gz" "$WORK/b40/labels/case_$i.nii.gz"
      mv "$WORK/b40/s/probs.nii.gz" "$WORK/b40/preds/case_$i.nii.gz"
    done
  fi
  echo "== batch: 40 cases of 128³ × 3"
  for bin in "$B" ${OLD:+"$OLD"}; do
    measure "batch --jobs 2 ($([ "$bin" = "$B" ] && echo this || echo OLD))" bash -c \
      "rm -rf $WORK/b40/out; $bin batch --labels-dir $WORK/b40/labels --pred-dir $WORK/b40/preds --out $WORK/b40/out --jobs 2 --quiet"
  done
fi
has track || exit 0

STEPS=${STEPS:-50}
mkdir -p "$WORK/track"
for i in $(seq -f %03g 1 "$STEPS"); do ln -sf ../mc4/probs.nii.gz "$WORK/track/epoch_$i.nii.gz"; done
L="$WORK/mc4/labels.nii.gz"
echo "== track: $STEPS checkpoints of mc4"
measure "$STEPS x analyze (one after the other)" bash -c \
  "for p in $WORK/track/epoch_*.nii.gz; do $B analyze --labels $L --pred \$p > /dev/null; done"
measure "track ($STEPS steps)" "$B" track --quiet --labels "$L" --pred "$WORK"/track/epoch_*.nii.gz \
  --out "$WORK/track-out" --force
measure "track ($STEPS steps) --compare ce" "$B" track --quiet --labels "$L" --pred "$WORK"/track/epoch_*.nii.gz \
  --out "$WORK/track-out" --force --compare ce
