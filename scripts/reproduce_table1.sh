#!/usr/bin/env bash
# The CPU part of the paper's Table 1, as committed under results/: one `adaloss run`
# per (task, model, method, seed), WORKERS of them at a time, one torch thread each.
#
#   scripts/reproduce_table1.sh [FIRST_SEED] [LAST_SEED]     (default 0 9)
#   WORKERS=4 ADALOSS=adaloss scripts/reproduce_table1.sh 5 9
#
# Resumable: `adaloss run` skips a finished result file, so killing this script and
# starting it again loses only the runs in flight. Order: digits + logistic, the three
# regression sets, then digits + MLP; within a (task, seed), the five columns of the table
# (baseline, ML3, Meta-LR, AdaLFL at the paper's η, AdaLFL at η = 1e-2).
set -euo pipefail

first=${1:-0}
last=${2:-9}
workers=${WORKERS:-2}
adaloss=${ADALOSS:-adaloss}
common="--seeds 1 --threads 1 --quiet"

jobs() {
    local task=$1 model=$2 out=$3 s method
    for s in $(seq "$first" "$last"); do
        for method in adalfl metalr ml3 baseline; do  # AdaLFL: the paper's recipe
            echo "$adaloss run --task $task $model --methods $method --recipe paper --first-seed $s $common --out $out"
        done
        echo "$adaloss run --task $task $model --methods adalfl --recipe paper --meta-lr 1e-2 --first-seed $s $common --out $out"
    done
}

{
    jobs digits "--model adaloss_logistic" results/classification
    for task in diabetes crime california; do
        jobs "$task" "" results/regression
    done
    jobs digits "--model adaloss_mlp" results/classification
} | xargs -P "$workers" -I{} sh -c '{}'
