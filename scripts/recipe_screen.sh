#!/usr/bin/env bash
# Screening for the default recipe (issue 12): every candidate on the five Table 1 rows,
# 3 seeds, shortened runs, chosen afterwards on *selection* error only
# (`adaloss table results/recipe-screen --split selection --per-seed`).
#
#   scripts/recipe_screen.sh [STEPS] [SEEDS]          (default 2000 3)
#   WORKERS=2 ADALOSS="python -m adaloss" OUT=results/recipe-screen scripts/recipe_screen.sh
#
# Resumable like reproduce_table1.sh: a finished result file is never recomputed.
set -euo pipefail

steps=${1:-2000}
seeds=${2:-3}
workers=${WORKERS:-2}
adaloss=${ADALOSS:-adaloss}
out=${OUT:-results/recipe-screen}
common="--steps $steps --threads 1 --quiet --out $out"

# Candidates: the warm-start recipe at online η 1e-4 and 1e-3 (the two values of the first
# screening in issue 12), both with the guard at κ = 2; the baseline on the same four-way
# split. (η 1e-5 and "no guard" were dropped after the first row: on 2 shared cores the
# whole grid would not finish in a sitting; their digits + logistic seed-0 files are kept.)
# --loss network --learn-lr off: the default when these ran (since session 28 it builds
# MonotoneLossNetwork on regression and learns the step length on classification).
candidates=(
    "--methods baseline"
    "--methods adalfl --recipe default --loss network --learn-lr off --meta-lr 1e-4"
    "--methods adalfl --recipe default --loss network --learn-lr off --meta-lr 1e-3"
)

rows=(
    "--task digits --model adaloss_logistic"
    "--task diabetes"
    "--task crime"
    "--task california"
    "--task digits --model adaloss_mlp"
)

for s in $(seq 0 $((seeds - 1))); do
    for row in "${rows[@]}"; do
        for c in "${candidates[@]}"; do
            echo "$adaloss run $row $c --first-seed $s --seeds 1 $common"
        done
    done
done | xargs -P "$workers" -I{} sh -c '{}'
