#!/usr/bin/env bash
# Run the benchmark suite on the GPU machine, JAX backend (see shared/gpu/README.md).
# Needs the wheels fetched by shared/gpu/fetch-wheels.sh in .whl/ (carried along).
# Usage (from the repository root, on the GPU machine): bash bench/gpu.sh [NAME ...]
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
  --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH="/tmp/site:$PWD" KERAS_BACKEND=jax PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false
nvidia-smi --query-gpu=name,memory.total --format=csv || true
python3 -m bench "$@" --out "${OUT:-bench/results}"
