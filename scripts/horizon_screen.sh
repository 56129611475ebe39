#!/usr/bin/env bash
# Screening of the momentum horizon (issue 12): the five Table 1 rows trained with SGD
# momentum 0.9 at a tenth of the paper's learning rate (the same effective step,
# lr/(1−μ)), 3 seeds, 2,000 steps: the baseline, the `step` recipe (L_T at θ_{t+1}) and the
# default (L_T where the step's momentum carries θ). The committed results predate the names:
# there `adalfl_default` is today's `step` and `adalfl_horizon` today's default. Chosen on
# selection error only (`adaloss table results/horizon-screen --split selection`).
#
#   scripts/horizon_screen.sh [STEPS] [SEEDS]          (default 2000 3)
#   OUT=results/horizon-confirm scripts/horizon_screen.sh 10000 2   (the full-length check)
#
# Resumable: a finished result file is never recomputed.
set -euo pipefail

steps=${1:-2000}
seeds=${2:-3}
workers=${WORKERS:-2}
adaloss=${ADALOSS:-adaloss}
out=${OUT:-results/horizon-screen}
common="--steps $steps --threads 1 --quiet --out $out --momentum 0.9"

# --loss network --learn-lr off: the default when these ran (since session 28 it builds
# MonotoneLossNetwork on regression and learns the step length on classification).
candidates=(
    "--methods baseline"
    "--methods adalfl --recipe step"
    "--methods adalfl --recipe default --loss network --learn-lr off"
)

rows=(
    "--task digits --model adaloss_logistic --lr 0.001"
    "--task diabetes --lr 0.0001"
    "--task crime --lr 0.0001"
    "--task california --lr 0.0001"
    "--task digits --model adaloss_mlp --lr 0.001"
)

for s in $(seq 0 $((seeds - 1))); do
    for row in "${rows[@]}"; do
        for c in "${candidates[@]}"; do
            echo "$adaloss run $row $c --first-seed $s --seeds 1 $common"
        done
    done
done | xargs -P "$workers" -I{} sh -c '{}'
