#!/usr/bin/env bash
# One-shot GPU check for the device machine (H100/H200: Python 3.12, CuPy 14, PyTorch; no
# pydicom, no network). Runs from any directory; tinyseg is used from this checkout.
#   1. the test suite with the `xp` fixture on cupy (numpy/cupy parity, fast paths vs plain on the
#      GPU), lessons and docs excluded;
#   2. benchmarks/train_step.py --device gpu  (tinyseg on cupy with every CUDA fast path on (TINYSEG_FUSED=1), the same with
#      them off ("plain", TINYSEG_FUSED=0), and the PyTorch twin on CUDA);
#   3. benchmarks/epochs_gpu.py --device gpu  (100 epochs of adv_multi_fcn_crf after a warm-up epoch).
# Everything is tee'd to $OUT/gpu_check.log when $OUT is set (JSON and markdown results beside it).
# Each phase has a time limit so the whole script stays under about 6 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEST=${OUT:-/tmp/gpu_check}
mkdir -p "$DEST"
LOG=${OUT:+$OUT/gpu_check.log}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export TINYSEG_CACHE=${TINYSEG_CACHE:-/tmp/tinyseg-cache}
T_TESTS=${T_TESTS:-170} T_STEP=${T_STEP:-160} T_EPOCHS=${T_EPOCHS:-70}

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

  echo "== [1/3] pytest (xp fixture: numpy and cupy), limit ${T_TESTS}s"
  local t0=$SECONDS
  # The GPU-relevant files: every op, the CRF, the models, adversarial training, and the parity suite
  # (every gradcheck case and every variant on cupy vs numpy). The data layer is plain numpy.
  timeout "$T_TESTS" "$PY" -m pytest -q -p no:cacheprovider ${TESTS:-tests/test_gpu_parity.py tests/test_conv.py \
      tests/test_pooling.py tests/test_activation.py tests/test_loss.py tests/test_prior.py tests/test_crf.py \
      tests/test_crf_kernels.py tests/test_arithmetic.py tests/test_autodiff.py tests/test_backend.py \
      tests/test_models.py tests/test_adversarial.py tests/test_optim.py \
      tests/test_crf_fused.py tests/test_optim_fused.py tests/test_cuda_registry.py} --junitxml "$DEST/pytest_gpu.xml"
  echo "pytest rc=$? ($((SECONDS - t0)) s)"

  echo "== [2/3] train_step.py --device gpu, limit ${T_STEP}s"
  t0=$SECONDS
  timeout "$T_STEP" "$PY" benchmarks/train_step.py --device gpu --child-timeout 120 \
      --json "$DEST/train_step_gpu.json" --markdown "$DEST/train_step_gpu.md"
  echo "train_step rc=$? ($((SECONDS - t0)) s)"

  echo "== [3/3] epochs_gpu.py --device gpu, limit ${T_EPOCHS}s"
  t0=$SECONDS
  timeout "$T_EPOCHS" "$PY" benchmarks/epochs_gpu.py --device gpu --epochs 100 --max-seconds 45 \
      --json "$DEST/epochs_gpu.json"
  echo "epochs_gpu rc=$? ($((SECONDS - t0)) s)"
  echo "== done in ${SECONDS} s"
}

if [ -n "$LOG" ]; then main 2>&1 | tee "$LOG"; else main 2>&1; fi
