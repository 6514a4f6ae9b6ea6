#!/usr/bin/env bash
# GNU parallel over ssh: shards on every host in hosts.txt (one
# `user@host` a line, printk-sim on each host's PATH), two jobs a host at
# a time, each shard's lines fetched back as it finishes; then merge here.
#
#   deploy/parallel-ssh.sh hosts.txt 16
set -euo pipefail
hosts=${1:?a file of ssh hosts, one a line}
shards=${2:-16}
mkdir -p results
seq 1 "$shards" | parallel --sshloginfile "$hosts" -j 2 --return "results/shard-{}.jsonl" \
  --cleanup --workdir ... \
  "mkdir -p results && printk-sim run random-nmi-storm --repeat 4000 \
     --shard {}/$shards --jsonl results/shard-{}.jsonl --quiet > /dev/null"
printk-sim merge results/shard-*.jsonl --json results/sweep.json
