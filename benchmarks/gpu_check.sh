#!/usr/bin/env bash
# One-shot GPU check for the device machine (H100/H200: Python 3.12, CuPy 14, PyTorch; no
# pydicom, no network). Runs from any directory; tinyseg is used from this checkout. About 5 min:
#   1. verification of every CUDA fast path, TINYSEG_FAST_PATHS=1 set explicitly: each gradient-check
#      case a fast path overrides against the plain path on the GPU (float32 and float64), the
#      float64 gradient check through the fast paths, one training step of every variant and graph
#      fused against plain, CuPy against NumPy for every case and variant, and `tinyseg train
#      --device gpu` end to end (tests/cuda/test_gpu_fast_paths.py, tests/cuda/test_gpu_parity.py);
#   2. benchmarks/gpu_verified.py: which fast paths passed -> $OUT/verified.json, the records a
#      person copies into tinyseg.cuda.VERIFIED after reading the log;
#   3. benchmarks/train_step.py --device gpu: tinyseg with every fast path, the plain CuPy path and
#      the PyTorch twin, alternating separate processes; dense multi_fcn_crf inference at batch 1024;
#   4. benchmarks/epochs_gpu.py: 100 epochs of adv_multi_fcn_crf after a warm-up epoch.
# Everything is tee'd to $OUT/gpu_check.log when $OUT is set (JSON and markdown results beside it).
# Each phase has a time limit. GPU_CHECK_DRYRUN=1 runs phases 1-2 on the CPU through the g++
# emulator (a subset, to check the script before it spends GPU time) and skips the benchmarks.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEST=${OUT:-/tmp/gpu_check}
mkdir -p "$DEST"
LOG=${OUT:+$OUT/gpu_check.log}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export TINYSEG_CACHE=${TINYSEG_CACHE:-/tmp/tinyseg-cache}
T_TESTS=${T_TESTS:-150} T_STEP=${T_STEP:-100} T_EPOCHS=${T_EPOCHS:-55}

main() {
  echo "== gpu_check $(date -u +%FT%TZ) in $PWD"
  # The device machine has no pydicom and no network: install a carried wheel if there is one
  # (run(carry=[".whl"]) after `pip download pydicom -d .whl`).
  if ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && \
      export PYTHONPATH="$PYTHONPATH:/tmp/site"
  fi
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
  "$PY" - <<'PYEOF'
import sys, numpy
print("python", sys.version.split()[0], "numpy", numpy.__version__)
try:
    import cupy; print("cupy", cupy.__version__, "CUDA runtime", cupy.cuda.runtime.runtimeGetVersion(),
                       "driver", cupy.cuda.runtime.driverGetVersion())
except Exception as e: print("cupy unavailable:", e)
try:
    import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "available", torch.cuda.is_available())
except Exception as e: print("torch unavailable:", e)
PYEOF

  local t0=$SECONDS
  local dry=${GPU_CHECK_DRYRUN:-0}
  echo "== [1/4] fast-path verification tests (TINYSEG_FAST_PATHS=1), limit ${T_TESTS}s"
  rm -f "$DEST/fast_paths_taken.jsonl"
  if [ "$dry" = 1 ]; then
    # On the CPU: the same tests through the emulator (slow: one thread per CUDA thread), the
    # float64 cases and one training step.
    TINYSEG_FAST_PATHS=1 TINYSEG_GPU_DRYRUN=1 TINYSEG_GPU_CHECK_OUT="$DEST" timeout "$T_TESTS" \
      "$PY" -m pytest -q -p no:cacheprovider tests/cuda/test_gpu_fast_paths.py \
      -k "(case_equals and float64) or step_on_the_device[fcn-dense]" --junitxml "$DEST/pytest_gpu.xml"
  else
    TINYSEG_FAST_PATHS=1 TINYSEG_GPU_CHECK_OUT="$DEST" timeout "$T_TESTS" "$PY" -m pytest -q -p no:cacheprovider \
      --gradcheck tests/cuda/test_gpu_fast_paths.py tests/cuda/test_gpu_parity.py --junitxml "$DEST/pytest_gpu.xml"
  fi
  echo "pytest rc=$? ($((SECONDS - t0)) s)"

  echo "== [2/4] which fast paths passed"
  local gpu
  gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  "$PY" benchmarks/gpu_verified.py "$DEST" --gpu "${gpu:-none (emulated dry run)}" \
      --command "benchmarks/gpu_check.sh (TINYSEG_FAST_PATHS=1 pytest tests/cuda/test_gpu_fast_paths.py tests/cuda/test_gpu_parity.py)"
  if [ "$dry" = 1 ]; then echo "== dry run: benchmarks skipped; done in ${SECONDS} s"; return; fi

  echo "== [3/4] train_step.py --device gpu (fused, plain, torch; inference at batch 1024), limit ${T_STEP}s"
  t0=$SECONDS
  timeout "$T_STEP" "$PY" benchmarks/train_step.py --device gpu --child-timeout 100 \
      --big-batch 1024 --big-variants multi_fcn_crf \
      --json "$DEST/train_step_gpu.json" --markdown "$DEST/train_step_gpu.md"
  echo "train_step rc=$? ($((SECONDS - t0)) s)"

  echo "== [4/4] epochs_gpu.py --device gpu (100 epochs of adv_multi_fcn_crf), limit ${T_EPOCHS}s"
  t0=$SECONDS
  TINYSEG_FAST_PATHS=1 timeout "$T_EPOCHS" "$PY" benchmarks/epochs_gpu.py --device gpu --epochs 100 --max-seconds 40 \
      --json "$DEST/epochs_gpu.json"
  echo "epochs_gpu rc=$? ($((SECONDS - t0)) s)"
  echo "== done in ${SECONDS} s"
}

if [ -n "$LOG" ]; then main 2>&1 | tee "$LOG"; else main 2>&1; fi
