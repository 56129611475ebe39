#!/usr/bin/env bash
# Confirmation of the two best screened recipes (issue 12): the five Table 1 rows at the
# paper's step counts (10,000), against the baseline (and, with METALR=1, Meta-LR) on the
# same four-way split: the default recipe (η 1e-3) and the same recipe at η 1e-4.
#
#   scripts/recipe_confirm.sh [FIRST_SEED] [LAST_SEED]      (default 0 9)
#   WORKERS=2 ADALOSS="python -m adaloss" OUT=results/recipe-confirm scripts/recipe_confirm.sh
#
# Order: one block of seeds at a time, so a queue cut short still leaves whole rows.
# Resumable (finished files are skipped).
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

methods=(
    "--methods baseline"
    "--methods adalfl --recipe default"
    "--methods adalfl --recipe default --meta-lr 1e-4"
)
if [ "${METALR:-0}" = 1 ]; then methods+=("--methods metalr"); fi

jobs() {
    local s row m
    for ((start = first; start <= last; start += block)); do
        for s in $(seq "$start" $((start + block - 1 < last ? start + block - 1 : last))); do
            for row in "${rows[@]}"; do
                for m in "${methods[@]}"; do
                    echo "$adaloss run $row $m --first-seed $s --seeds 1 $common"
                done
            done
        done
    done
}

jobs | xargs -P "$workers" -I{} sh -c '{}'
