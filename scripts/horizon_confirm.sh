#!/usr/bin/env bash
# Confirmation of the momentum-horizon screening (issue 12) at the paper's step counts:
# the five Table 1 rows with SGD momentum 0.9 at a tenth of the paper's learning rate
# (`scripts/horizon_screen.sh`), seeds FIRST..LAST, 10,000 steps.
#
#   scripts/horizon_confirm.sh FIRST LAST
#   METHODS="baseline horizon" scripts/horizon_confirm.sh 1 1   (a subset; default: baseline horizon default)
#
# Resumable: a finished result file is never recomputed.
set -euo pipefail

first=${1:-0}
last=${2:-1}
workers=${WORKERS:-2}
adaloss=${ADALOSS:-adaloss}
out=${OUT:-results/horizon-confirm}
common="--steps 10000 --threads 1 --quiet --out $out --momentum 0.9"
read -r -a methods <<< "${METHODS:-baseline horizon default}"

rows=(
    "--task digits --model adaloss_logistic --lr 0.001"
    "--task diabetes --lr 0.0001"
    "--task crime --lr 0.0001"
    "--task california --lr 0.0001"
    "--task digits --model adaloss_mlp --lr 0.001"
)

for s in $(seq "$first" "$last"); do
    for row in "${rows[@]}"; do
        for m in "${methods[@]}"; do
            if [ "$m" = baseline ]; then c="--methods baseline"; else c="--methods adalfl --recipe $m"; fi
            echo "$adaloss run $row $c --first-seed $s --seeds 1 $common"
        done
    done
done | xargs -P "$workers" -I{} sh -c '{}'
