#!/usr/bin/env bash
# Every lesson with --device gpu on the device machine, timed, plus every registered float64
# gradient check on CuPy. Output under $OUT (or /tmp/gpu_lessons): lessons_gpu.log and the figures
# are not kept (only the log comes back). Run: bash benchmarks/gpu_lessons.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEST=${OUT:-/tmp/gpu_lessons}
mkdir -p "$DEST"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export TINYSEG_CACHE=${TINYSEG_CACHE:-/tmp/tinyseg-cache}
if ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && \
    export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
{
  echo "== float64 gradient checks of every registered case on CuPy"
  timeout 120 "$PY" -m pytest -q -p no:cacheprovider tests/test_gradcheck.py --gradcheck -k cupy 2>&1 | tail -3
  for lesson in lessons/0*.py; do
    name=$(basename "$lesson" .py)
    echo "== $name --device gpu"
    t0=$SECONDS
    timeout 150 "$PY" "$lesson" --device gpu --out "/tmp/lessons_gpu/$name" 2>&1 | grep -E '^\[|Error|error' | cut -c1-400
    echo "$name: rc=${PIPESTATUS[0]} wall $((SECONDS - t0)) s (includes CuPy kernel compilation)"
  done
} 2>&1 | tee "$DEST/lessons_gpu.log"
