#!/usr/bin/env bash
# Runs the benchmark grid (methods x datasets x seeds) and rebuilds every leaderboard table.
# Default: the built-in synthetic dataset, so it runs anywhere. Override with environment variables:
#   METHODS="fmfa ivt lgur" DATASETS="synth" SEEDS="0 1 2" RESULTS=results OUT=leaderboards ./run_all.sh
#   DATASETS="cuhk icfg" DATA_ROOT_cuhk=/data/CUHK-PEDES DATA_ROOT_icfg=/data/ICFG-PEDES ./run_all.sh
# Finished runs are not repeated: a rerun resumes from checkpoints, and the leaderboard keeps the
# newest record per (method, dataset, seed, config).
set -euo pipefail
cd "$(dirname "$0")"
METHODS=${METHODS:-"fmfa ivt lgur"}
DATASETS=${DATASETS:-"synth"}
SEEDS=${SEEDS:-"0 1 2"}
RESULTS=${RESULTS:-results}
OUT=${OUT:-leaderboards}
for d in $DATASETS; do
  root_var="DATA_ROOT_$d"
  root_arg=()
  if [ -n "${!root_var:-}" ]; then root_arg=(--data-root "${!root_var}"); fi
  for m in $METHODS; do
    for s in $SEEDS; do
      echo "== $m on $d, seed $s"
      harness run --method "$m" --dataset "$d" --seed "$s" --results-dir "$RESULTS" "${root_arg[@]}"
    done
  done
done
harness leaderboard --results-dir "$RESULTS" --out "$OUT"
