#!/usr/bin/env bash
# Confirmation of the two best screened recipes (issue 12): the five Table 1 rows at the
# paper's step counts (10,000), against the baseline (and, with METALR=1, Meta-LR) on the
# same four-way split: the default recipe (η 1e-3) and the same recipe at η 1e-4.
#
#   scripts/recipe_confirm.sh [FIRST_SEED] [LAST_SEED]      (default 0 9)
#   WORKERS=2 ADALOSS="python -m adaloss" OUT=results/recipe-confirm scripts/recipe_confirm.sh
#   ROWS="0 1" SECOND=0 METALR=1 scripts/recipe_confirm.sh 2 9   (rows 0-1 only, no η 1e-4)
#
# Order: one block of seeds at a time, so a queue cut short still leaves whole seeds; ROWS
# (indices into the rows below, in the order given) runs row by row instead, so a queue cut
# short leaves whole rows. Resumable (finished files are skipped).
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

# --loss network --learn-lr off: the default when these ran (since session 28 it builds
# MonotoneLossNetwork on regression and learns the step length on classification).
methods=(
    "--methods baseline"
    "--methods adalfl --recipe default --loss network --learn-lr off"
)
if [ "${SECOND:-1}" = 1 ]; then methods+=("--methods adalfl --recipe default --loss network --learn-lr off --meta-lr 1e-4"); fi
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

jobs_by_row() {
    local r s m
    for r in $ROWS; do
        for s in $(seq "$first" "$last"); do
            for m in "${methods[@]}"; do
                echo "$adaloss run ${rows[$r]} $m --first-seed $s --seeds 1 $common"
            done
        done
    done
}

if [ -n "${ROWS:-}" ]; then jobs_by_row; else jobs; fi | xargs -P "$workers" -I{} sh -c '{}'
