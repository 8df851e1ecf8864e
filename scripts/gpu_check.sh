#!/usr/bin/env bash
# GPU check: AMP, torch.compile, k-fold ensemble + distillation on CUDA, CUDA inference, ONNX Runtime providers.
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 OMP_NUM_THREADS=4
D=${1:?usage: scripts/gpu_check.sh DATA_DIR}; G=/tmp/g; E="python3 -m ecgcnn"
log() { echo "=== $*"; }
nvidia-smi -L
python3 -c "import torch, onnxruntime as ort; print('torch', torch.__version__, torch.cuda.is_available(), torch.cuda.get_device_name(0)); print('ort', ort.__version__, ort.get_available_providers())"
run() { log "$*"; local t0=$SECONDS; "$@" 2>&1 | grep -v "^ \|^$\|precision\|avg\|^[0-9] " | tail -6; echo "rc=${PIPESTATUS[0]} wall=$((SECONDS - t0)) s"; }
run $E train --model inception --epochs 5 --device cuda --data-dir $D --output-dir $G/amp --no-progress
run $E train --model inception --epochs 5 --device cuda --no-amp --data-dir $D --output-dir $G/fp32 --no-progress
run $E train --model inception --epochs 5 --device cpu --data-dir $D --output-dir $G/cpu --no-progress
run $E train --model tcn --epochs 5 --device cuda --compile --data-dir $D --output-dir $G/compile --no-progress
run $E train --recipe best --folds 2 --epochs 5 --device cuda --data-dir $D --output-dir $G --no-progress
run $E train --recipe edge --epochs 5 --device cuda --compile --data-dir $D --output-dir $G --no-progress
for f in amp/inception/metrics.json fp32/inception/metrics.json compile/tcn/metrics.json best/metrics.json edge/metrics.json; do
  python3 -c "import json,sys; m=json.load(open('$G/$f')); print('$f', 'device', m['device'], 'amp', m['amp'], 'test', round(m['test']['accuracy'],4), 'compile', m['config']['compile'], 'epoch s', [round(h['seconds'],2) for h in (m['history'] or m['members'][0]['history'])])"
done
run $E evaluate $G/best/best_best.pth --device cuda --data-dir $D
run $E evaluate $G/best/best_best.pth --device cpu --data-dir $D
run $E export onnx $G/best/best_best.pth --output-dir $G/onnx --data-dir $D
run $E evaluate $G/onnx/best.onnx --device cuda --data-dir $D
run $E bench $G/best/best_best.pth $G/onnx/best.onnx --batch-sizes 1 512 --runs 50 --max-seconds 5 --data-dir $D
