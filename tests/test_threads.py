"""tinyseg.threads: tinyseg's own threads and the BLAS pools share the cores; the user's settings win.

The BLAS libraries read their thread counts once, when they load, so each setting is checked in
a fresh Python process with exactly that environment.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyseg import threads
from tinyseg.backend import THREAD_SETTINGS

ROOT = Path(__file__).resolve().parents[1]

# Runs one dense CRF forward pass in waves of 2 images (each worker builds and uses its own
# chunk's kernel) and reports the BLAS pools' thread counts before, inside a kernel build, and after.
_PROBE = """
import json, threading
import numpy as np
from threadpoolctl import threadpool_info
import tinyseg.functions as F
from tinyseg.functions import crf_chunks

def blas():
    return sorted(d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas")

inside = []
def probing(*args, **kwargs):
    inside.append({"blas": blas(), "thread": threading.current_thread().name})
    return F.crf_kernels(*args, **kwargs)

crf_chunks.crf_kernels = probing
crf_chunks._CHUNK_BYTES, crf_chunks._WAVE_BYTES = 1600 * 1600 * 4, 2 * 1600 * 1600 * 4
import scipy.linalg.blas  # both pools loaded before the first look
before = blas()
rng = np.random.default_rng(0)
F.mean_field_crf(rng.standard_normal((6, 2, 40, 40)).astype(np.float32),
                 rng.standard_normal((6, 1, 40, 40)).astype(np.float32), np.ones(2, np.float32))
print("PROBE " + json.dumps({"before": before, "inside": inside, "after": blas()}))
"""


def _clean_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (*THREAD_SETTINGS, "TINYSEG_NUM_THREADS")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return {**env, **settings}


def _probe(**settings: str) -> dict:
    p = subprocess.run([sys.executable, "-c", _PROBE], env=_clean_env(**settings), capture_output=True, text=True,
                       timeout=300, check=True)
    return json.loads(next(ln for ln in p.stdout.splitlines() if ln.startswith("PROBE "))[6:])


def test_own_threads_limits_every_blas_pool_to_one_thread_while_tinyseg_builds_and_restores_it() -> None:
    out = _probe(TINYSEG_NUM_THREADS="2")
    assert len(out["before"]) >= 2, "NumPy's and SciPy's BLAS should both be seen"
    assert len(out["inside"]) == 6  # one build per image
    assert all(probe["blas"] == [1] * len(out["before"]) for probe in out["inside"])
    assert all(probe["thread"].startswith("tinyseg") for probe in out["inside"])  # built by tinyseg's workers
    assert out["after"] == out["before"]


def test_the_users_blas_setting_wins_inside_tinysegs_regions() -> None:
    out = _probe(OPENBLAS_NUM_THREADS="2")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if cores >= 2:
        assert out["before"] == [2] * len(out["before"])
    assert all(probe["blas"] == out["before"] for probe in out["inside"])  # left as the user set them
    assert all(probe["thread"].startswith("tinyseg") for probe in out["inside"])  # cpu_threads() follows it
    assert out["after"] == out["before"]


def test_tinyseg_num_threads_1_builds_on_the_calling_thread() -> None:
    out = _probe(TINYSEG_NUM_THREADS="1")
    assert all(probe["thread"] == "MainThread" for probe in out["inside"])
    assert all(probe["blas"] == [1] * len(out["before"]) for probe in out["inside"])


def test_own_threads_sets_no_environment_variable() -> None:
    """Not even the one threadpoolctl's import sets (KMP_DUPLICATE_LIB_OK): checked in a fresh process."""
    code = ("import os\nbefore = dict(os.environ)\nfrom tinyseg import threads\n"
            "with threads.own_threads() as workers:\n    assert workers.submit(sum, [1, 2]).result() == 3\n"
            "assert threads.blas_controller() is threads.blas_controller()\n"
            "added = set(os.environ) - set(before)\nassert dict(os.environ) == before, added\n")
    env = _clean_env()
    env.pop("KMP_DUPLICATE_LIB_OK", None)
    subprocess.run([sys.executable, "-c", code], env=env, timeout=300, check=True)


def test_own_threads_gives_an_inline_executor_for_one_thread_that_reraises(monkeypatch) -> None:
    monkeypatch.setenv("TINYSEG_NUM_THREADS", "1")
    with threads.own_threads() as workers:
        future = workers.submit(lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            future.result()


# One dense-CRF training step (FCN-CRF, float32, two waves of 3 images); writes the loss and every
# gradient to the .npz file given as argv[1].
_STEP = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[2])
from _common import make_batch
from tinyseg.adversarial import loss_and_backward
from tinyseg.functions import crf_chunks
from tinyseg.models import build_model

crf_chunks._WAVE_BYTES = 3 * 1600 * 1600 * 4
model = build_model("adv_fcn_crf", dtype=np.float32, crf_graph="dense")
x, y = make_batch(6)
r = loss_and_backward(model, x.astype(np.float32), y, adversarial=True, eps=0.1, lam=0.5)
np.savez(sys.argv[1], loss=np.float32(r.loss), **{n: p.grad for n, p in model.named_parameters()})
"""


def _step(path: Path, **settings: str) -> dict[str, np.ndarray]:
    subprocess.run([sys.executable, "-c", _STEP, str(path), str(ROOT / "benchmarks")], env=_clean_env(**settings),
                   capture_output=True, text=True, timeout=300, check=True)
    with np.load(path) as z:
        return dict(z)


def test_a_dense_crf_step_is_the_same_at_1_and_2_threads_and_repeats_bit_for_bit(tmp_path: Path) -> None:
    one = {k: "1" for k in THREAD_SETTINGS}
    a = _step(tmp_path / "one.npz", **one)
    b = _step(tmp_path / "two.npz", TINYSEG_NUM_THREADS="2")  # BLAS as the machine gives it
    c = _step(tmp_path / "two_again.npz", TINYSEG_NUM_THREADS="2")
    assert a.keys() == b.keys() and len(a) > 3
    for k in a:
        scale = np.abs(a[k]).max()
        np.testing.assert_allclose(b[k], a[k], rtol=0, atol=2e-5 * scale, err_msg=k)  # float32 rounding at most
        # in fact bit for bit: BLAS runs on one thread inside the step and each chunk's work is the same
        np.testing.assert_array_equal(b[k], a[k], err_msg=k)
        np.testing.assert_array_equal(c[k], b[k], err_msg=k)  # same thread count: bit for bit


# A training step and an eval forward pass of an FCN, recording the BLAS pools' thread counts inside
# a convolution (a BLAS product of the FCN) and after.
_STEP_PROBE = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from threadpoolctl import threadpool_info
from _common import make_batch
import tinyseg as ts
from tinyseg.adversarial import loss_and_backward
from tinyseg.functions import conv
from tinyseg.models import build_model

def blas():
    return sorted(d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas")

seen = []
forward = conv.Conv2dOp.forward
def probing(self, *args):
    seen.append(blas())
    return forward(self, *args)
conv.Conv2dOp.forward = probing
import scipy.linalg.blas  # both pools loaded before the first look
before = blas()
model = build_model("fcn", dtype=np.float32)
x, y = make_batch(4)
loss_and_backward(model, x.astype(np.float32), y)
in_step = list(seen)
seen.clear()
with ts.no_grad():
    model(ts.Tensor(x.astype(np.float32)))
print("PROBE " + json.dumps({"before": before, "step": in_step, "forward": seen, "after": blas()}))
"""


def _step_probe(**settings: str) -> dict:
    p = subprocess.run([sys.executable, "-c", _STEP_PROBE, str(ROOT / "benchmarks")], env=_clean_env(**settings),
                       capture_output=True, text=True, timeout=300, check=True)
    return json.loads(next(ln for ln in p.stdout.splitlines() if ln.startswith("PROBE "))[6:])


def test_a_training_step_and_a_forward_pass_run_blas_on_one_thread_and_restore_it() -> None:
    out = _step_probe()
    assert len(out["before"]) >= 2 and out["step"] and out["forward"]
    assert all(pools == [1] * len(out["before"]) for pools in out["step"] + out["forward"])
    assert out["after"] == out["before"]  # the user's own NumPy code keeps its cores


def test_the_users_blas_setting_wins_in_a_training_step() -> None:
    out = _step_probe(OPENBLAS_NUM_THREADS="2")
    assert all(pools == out["before"] for pools in out["step"] + out["forward"])


def test_adam_updates_the_same_bit_for_bit_on_1_and_2_threads(monkeypatch) -> None:
    """Adam's blocks are shared out among tinyseg's threads; each element's update is the same."""
    import tinyseg as ts
    from tinyseg.optim import Adam

    rng = np.random.default_rng(3)
    shapes = [(3, Adam.BLOCK + 123), (7,), (Adam.BLOCK + 7, 2)]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(3)]
    results = []
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("TINYSEG_NUM_THREADS", threads)
        params = [ts.Parameter(np.ones(s, np.float32)) for s in shapes]
        opt = Adam(params)
        for step in grads:
            for p, g in zip(params, step):
                p.grad = g
            opt.step()
        results.append([p.data.copy() for p in params])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(results[0][0], np.ones(shapes[0], np.float32))
