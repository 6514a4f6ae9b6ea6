#!/usr/bin/env bash
# A Slurm array job: 16 shards of one sweep, one CPU-pair each. Submit it
# from a shared directory (results/ must be on storage every node sees):
#
#   sbatch deploy/slurm-array.sh
#   # when the array is done:
#   printk-sim merge results/shard-*.jsonl --json results/sweep.json
#
# printk-sim reads SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT (and
# SLURM_ARRAY_TASK_MIN) itself and says which shard it is on stderr; a
# task requeued after a node failure carries on from its file.
# SCENARIO, REPEAT and PRINTK_SIM_ARGS (more options) may be set by
# `sbatch --export`.
#SBATCH --job-name=printk-sim-sweep
#SBATCH --array=0-15
#SBATCH --cpus-per-task=2
#SBATCH --time=01:00:00
#SBATCH --output=results/shard-%a.log
set -euo pipefail
mkdir -p results
# shellcheck disable=SC2086 # PRINTK_SIM_ARGS is words
exec printk-sim run "${SCENARIO:-random-nmi-storm}" --repeat "${REPEAT:-4000}" \
  ${PRINTK_SIM_ARGS:-} --jsonl "results/shard-${SLURM_ARRAY_TASK_ID}.jsonl" --resume
