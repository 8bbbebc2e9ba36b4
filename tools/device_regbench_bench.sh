#!/usr/bin/env bash
# device_regbench_bench.sh — solo training throughput of each RegBench sweep model at its largest state
# (bla-paper-regbench.ini: batch 32, d 128, 2 x conv + mixer, MLPs), to size a sweep sitting: a run's
# time scales as 1 / tokens/s, and swa W 512 (the first line) took 327 s with 8 workers under MPS.
# Usage: bash tools/devenv.sh bash tools/device_regbench_bench.sh BIN   (prints "model: N tokens/s")
bin=${1:?usage: device_regbench_bench.sh BIN}
common="--backend cuda --task regbench --mlp --d-model 128 --batch 32 --db /tmp/rbbench.db --steps 30"
while read -r name args; do
  envs=; case $args in RB_*) envs=${args%% *}; args=${args#* } ;; esac  # an optional leading VAR=value
  r=$(env $envs timeout 120 "$bin/recallbench" bench $common $args 2>&1 | grep -o 'throughput [0-9]*' | cut -d' ' -f2)
  echo "$name: ${r:-failed} tokens/s"
done <<'LIST'
swa-w512 --layers conv,swa,conv,swa --window 512
bla-n128 --layers conv,bla,conv,bla --window 1024 --freqs 128
gsa-m256-fp32 --layers conv,gsa,conv,gsa --slots 256 --precision fp32
gsa-m256-fp32-scan RB_CUDA_GSA_FWD=scan --layers conv,gsa,conv,gsa --slots 256 --precision fp32
gsa-m64-fp32 --layers conv,gsa,conv,gsa --slots 64 --precision fp32
gsa-m64-fp32-split RB_CUDA_GSA_FWD=split --layers conv,gsa,conv,gsa --slots 64 --precision fp32
la-f32 --layers conv,la,conv,la --feature-map taylor --feature-dim 32
mamba-n256 --layers conv,mamba,conv,mamba --state-dim 256
attention-d256 --layers conv,attention,conv,attention --d-model 256 --heads 2
attention-d64 --layers conv,attention,conv,attention --d-model 64
LIST
