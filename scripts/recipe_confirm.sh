#!/usr/bin/env bash
# Confirmation of the default recipe (issue 12): the five Table 1 rows at the paper's step
# counts (10,000), ten seeds, against the baseline and Meta-LR on the same four-way split.
#
#   scripts/recipe_confirm.sh [FIRST_SEED] [LAST_SEED]      (default 0 9)
#   WORKERS=2 ADALOSS="python -m adaloss" OUT=results/recipe-confirm scripts/recipe_confirm.sh
#
# Order: baseline and AdaLFL (default recipe) for a block of seeds, then Meta-LR for the
# same block, so a queue cut short still leaves whole rows. Resumable (finished files are
# skipped).
set -euo pipefail

first=${1:-0}
last=${2:-9}
block=${BLOCK:-3}
workers=${WORKERS:-2}
adaloss=${ADALOSS:-adaloss}
out=${OUT:-results/recipe-confirm}
common="--threads 1 --quiet --out $out"

rows=(
    "--task digits --model adaloss_logistic"
    "--task diabetes"
    "--task crime"
    "--task california"
    "--task digits --model adaloss_mlp"
)

jobs() {
    local s row methods
    for ((start = first; start <= last; start += block)); do
        for methods in "baseline adalfl" "metalr"; do
            for s in $(seq "$start" $((start + block - 1 < last ? start + block - 1 : last))); do
                for row in "${rows[@]}"; do
                    for m in $methods; do
                        echo "$adaloss run $row --methods $m --recipe default --first-seed $s --seeds 1 $common"
                    done
                done
            done
        done
    done
}

jobs | xargs -P "$workers" -I{} sh -c '{}'
