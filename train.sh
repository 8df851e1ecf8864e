#!/usr/bin/env bash
# The seed's entry point: bash train.sh <model> [extra ecgcnn train flags]
set -euo pipefail
model="${1:-vgg}"
shift || true
if command -v ecgcnn >/dev/null 2>&1; then
  exec ecgcnn train --model "$model" "$@"
fi
here="$(cd "$(dirname "$0")" && pwd)"
exec "$here/.venv/bin/ecgcnn" train --model "$model" "$@"
