#!/usr/bin/env bash
# The divergence guard on the paper recipe's failing seeds (issue 12 §3): the paper's
# recipe (offline phase, η 1e-5) with and without the guard (κ = 2), 1,000 steps, on
# seeds where it diverged in the Table 1 reproduction (BENCHMARKS.md).
#
#   WORKERS=1 ADALOSS="python -m adaloss" OUT=results/guard-check scripts/guard_check.sh
set -euo pipefail
workers=${WORKERS:-1}
adaloss=${ADALOSS:-adaloss}
out=${OUT:-results/guard-check}
common="--methods adalfl --recipe paper --steps 1000 --seeds 1 --threads 1 --quiet --out $out"
for job in "diabetes 1" "diabetes 2" "crime 0" "california 1"; do
    set -- $job
    for guard in ${GUARDS:-0 2}; do
        echo "$adaloss run --task $1 --first-seed $2 --guard $guard $common"
    done
done | xargs -P "$workers" -I{} sh -c '{}'
