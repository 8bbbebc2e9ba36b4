#!/usr/bin/env bash
# device_ab_regbench.sh — on the device: as tools/device_ab.sh, on the RegBench sweep's shape (batch 32,
# ~900-token sequences, d 128, two conv + mixer blocks with MLPs) instead of the GPU reference config: two
# builds of recallbench timed in turn by `bench --backend cuda`, ROUNDS rounds, medians and the ratio B/A.
# Run it through tools/devenv.sh. Usage: bash tools/devenv.sh bash tools/device_ab_regbench.sh BIN_A BIN_B
# ROUNDS "LAYER FLAGS" ...   (e.g. "conv,swa,conv,swa --window 512")
set -u
a=${1:?usage: device_ab_regbench.sh BIN_A BIN_B ROUNDS "LAYER FLAGS" ...}; b=${2:?}; rounds=${3:?}; shift 3
AB_REF="--task regbench --mlp --d-model 128 --batch 32 --db /tmp/abr.db --steps 30" \
  exec bash "$(dirname "$0")/device_ab.sh" "$a" "$b" "$rounds" "$@"
