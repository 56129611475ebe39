#!/usr/bin/env bash
# Screening one variant of the default recipe (issue 12) on the five Table 1 rows at the
# paper's settings (plain SGD, 10,000 steps), seeds 0..SEEDS-1. Full length, not 2,000 steps:
# the default's harm on Diabetes appears after 2,000–4,000 steps (results/recipe-confirm
# curves). Compared with the baseline and the default of results/recipe-confirm (same θ_0,
# ϕ_0 and batches) by `python scripts/recipe_mechanism.py`.
#
#   OUT=results/anchor-screen scripts/variant_screen.sh "--meta-anchor 1" [SEEDS]   (default 3)
#   NOISE=1 ...   also the corrupted-target rows of scripts/noise_screen.sh, each after its
#                 clean row (compared with results/noise-generality)
#
# Resumable: a finished result file is never recomputed. Chosen on selection error only.
set -euo pipefail

variant=${1:?options of adaloss run that make the variant, e.g. --horizon 10}
seeds=${2:-3}
workers=${WORKERS:-2}
adaloss=${ADALOSS:-adaloss}
out=${OUT:?a result folder for the screen}
# --loss network --learn-lr off: the default when these ran (since session 28 it builds
# MonotoneLossNetwork on regression and learns the step length on classification).
common="--methods adalfl --recipe default --loss network --learn-lr off $variant --threads 1 --quiet --out $out"

rows=(  # the rows where the default lost first, then the rest
    "--task diabetes"
    "--task crime"
    "--task digits --model adaloss_logistic"
    "--task california"
    "--task digits --model adaloss_mlp"
)
if [ "${NOISE:-0}" = 1 ]; then
    rows=(
        "--task diabetes"
        "--task diabetes --label-noise 0.2"
        "--task crime"
        "--task crime --label-noise 0.2"
        "--task digits --model adaloss_logistic"
        "--task digits --model adaloss_logistic --label-noise 0.4"
        "--task california"
        "--task digits --model adaloss_mlp"
        "--task digits --model adaloss_mlp --label-noise 0.2"
    )
fi

for row in "${rows[@]}"; do
    for s in $(seq 0 $((seeds - 1))); do
        echo "$adaloss run $row --first-seed $s --seeds 1 $common"
    done
done | xargs -P "$workers" -I{} sh -c '{}'
