#!/usr/bin/env bash
# The TensorFlow GPU run of the benchmark suite, for a GPU machine where TensorFlow with CUDA is
# already importable (it installs nothing: the lent machines reach no package index, and the
# TF GPU wheels are too large to carry; without TF use benchmarks/gpu_check.sh, JAX backend).
# Paper size (64 px, batch 64): engine vs plain Keras, fp32 and mixed_float16, trunk frozen and
# trainable, the engine also with XLA (plain Keras turns XLA on by itself on a GPU); SVHN epoch
# time extrapolated from the timed steps. Budget: about 6 minutes. Writes under $OUT.
set -u
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} TF_CPP_MIN_LOG_LEVEL=2
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
probe=$(timeout 120 "$PY" -c "import tensorflow as tf, sys; g = tf.config.list_physical_devices('GPU'); print('tensorflow', tf.__version__, g); sys.exit(0 if g else 3)" 2>&1)
status=$?
echo "$probe" | tail -2 | tee -a "$OUT/gpu.txt"
if [ $status -ne 0 ]; then
  echo "TensorFlow with a visible GPU is not importable here: nothing run." | tee -a "$OUT/gpu.txt"
  exit 2
fi
timeout 420 "$PY" -m benchmarks.run_all --sizes paper --impls engine,keras \
  --precisions fp32,fp16 --engine-extra xla --rounds 3 --steps 20 --warmup 5 \
  --infer-steps 20 --memory shared --out "$OUT/gpu_tf.json" --markdown "$OUT/gpu_tf.md" \
  > "$OUT/gpu_tf.log" 2>&1
echo "exit code $?" | tee -a "$OUT/gpu_tf.log"
cat "$OUT/gpu_tf.md" 2>/dev/null || tail -30 "$OUT/gpu_tf.log"
