#!/usr/bin/env bash
# Runs the benchmark grid (methods x datasets x seeds) through `harness sweep` and rebuilds every
# leaderboard table when all jobs have ended. Default: the built-in synthetic dataset, one job at a
# time on this machine, so it runs anywhere. Override with environment variables:
#   METHODS="fmfa irra ivt lgur" DATASETS="synth" SEEDS="0 1 2" JOBS=1 RESULTS=leaderboards/records OUT=leaderboards ./run_all.sh
#   JOBS=3 ./run_all.sh                      # 3 jobs at once, each with cores // 3 threads
#   DATASETS="cuhk icfg" DATA_ROOT_cuhk=/data/CUHK-PEDES DATA_ROOT_icfg=/data/ICFG-PEDES ./run_all.sh
#   EXECUTOR=slurm ./run_all.sh --partition gpu --gpus-per-task 1 --time 12:00:00   # extra args go to harness sweep
# Finished runs are skipped (a record with the same method, dataset, seed and config hash is in the
# results store); an interrupted run resumes from its last checkpoint. `harness sweep status` shows progress.
set -euo pipefail
cd "$(dirname "$0")"
METHODS=${METHODS:-"fmfa irra ivt lgur"}
DATASETS=${DATASETS:-"synth"}
SEEDS=${SEEDS:-"0 1 2"}
JOBS=${JOBS:-1}
EXECUTOR=${EXECUTOR:-local}
RESULTS=${RESULTS:-leaderboards/records}
OUT=${OUT:-leaderboards}
root_args=()
for d in $DATASETS; do
  root_var="DATA_ROOT_$d"
  if [ -n "${!root_var:-}" ]; then root_args+=("$d=${!root_var}"); fi
done
args=(--methods "${METHODS// /,}" --datasets "${DATASETS// /,}" --seeds "${SEEDS// /,}"
      --executor "$EXECUTOR" --jobs "$JOBS" --results-dir "$RESULTS" --out "$OUT")
if [ ${#root_args[@]} -gt 0 ]; then args+=(--data-root "${root_args[@]}"); fi
if [ "$EXECUTOR" = slurm ]; then args+=(--wait); fi
harness sweep "${args[@]}" "$@"
