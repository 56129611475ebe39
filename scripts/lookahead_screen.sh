#!/usr/bin/env bash
# Screening a longer horizon without momentum (issue 12): the default recipe with the
# meta-objective measured at θ_t + H·U (`--horizon H`, default 10 = the horizon momentum 0.9
# gives); see scripts/variant_screen.sh for the rows, seeds and comparison.
#
#   scripts/lookahead_screen.sh [H] [SEEDS]             (default 10 3)
set -euo pipefail
OUT=${OUT:-results/lookahead-screen} exec "$(dirname "$0")/variant_screen.sh" \
    "--horizon ${1:-10}" "${2:-3}"
