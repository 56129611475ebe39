#!/usr/bin/env bash
# Corrupted-target screen (issue 12, BENCHMARKS.md "corrupted training targets"): on each
# row, plain training, plain training at twice the paper's lr (the control for a learned loss
# that only lengthens the step) and the default recipe, from the same θ_0, batches and
# corruption, at the paper's step count.
#
#   scripts/noise_screen.sh [FIRST_SEED] [LAST_SEED]                  (default 0 2)
#   ROWS="0 1" WORKERS=2 OUT=results/noise-generality scripts/noise_screen.sh 0 2
#   ADALOSS="python -m adaloss" ...  (run from a snapshot of the code with PYTHONPATH set)
#   CONTROL=0 ...  without the twice-the-lr control
#
# Rows are run one after the other, seed by seed, so a queue cut short leaves whole seeds of
# the first rows. Resumable: `adaloss run` skips result files that exist.
set -euo pipefail

first=${1:-0}
last=${2:-2}
workers=${WORKERS:-2}
adaloss=${ADALOSS:-adaloss}
out=${OUT:-results/noise-generality}
common="--threads 1 --quiet --out $out"

# task, model, fraction of corrupted training targets, twice the paper's lr
rows=(
    "crime adaloss_mlp 0.2 0.002"
    "diabetes adaloss_mlp 0.2 0.002"
    "digits adaloss_logistic 0.4 0.02"
    "digits adaloss_mlp 0.2 0.02"
    "digits adaloss_mlp 0.4 0.02"  # session 12's row (results/noise-screen)
)

# --loss network --learn-lr off: the default when these ran (since session 28 it builds
# MonotoneLossNetwork on regression and learns the step length on classification).
for r in ${ROWS:-0 1 2 3}; do
    read -r task model noise lr2 <<<"${rows[$r]}"
    row="--task $task --model $model --label-noise $noise"
    for s in $(seq "$first" "$last"); do
        echo "$adaloss run $row --methods baseline --first-seed $s --seeds 1 $common"
        if [ "${CONTROL:-1}" = 1 ]; then
            echo "$adaloss run $row --methods baseline --lr $lr2 --first-seed $s --seeds 1 $common"
        fi
        echo "$adaloss run $row --methods adalfl --recipe default --loss network --learn-lr off --first-seed $s --seeds 1 $common"
    done
done | xargs -P "$workers" -I{} sh -c '{}'
