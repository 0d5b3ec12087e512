#!/usr/bin/env bash
# One short GPU check for a lent machine without TensorFlow (its GPU wheels cannot be carried):
# Keras 3 (JAX backend) runs the engine's own model code; the PyTorch peer runs on CUDA.
# Needs keras/namex/optree wheels in .whl/ (see README, "GPU"). Writes under $OUT.
set -u
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import jax, keras, torch; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__, 'torch', torch.__version__)" | tee -a "$OUT/gpu.txt"
# The model's own tests, on the GPU backend (parameter counts, shared trunk, every variant).
timeout 150 python3 -m pytest -q -p no:cacheprovider -o addopts="" tests/core/test_model.py 2>&1 \
  | tail -5 | tee "$OUT/test_model.txt"
timeout 330 python3 -m benchmarks.gpu_step --steps 60 --warmup 5 \
  --precisions float32,mixed_bfloat16 --out "$OUT/gpu_step.json" 2>&1 | tee "$OUT/gpu_step.log"
