"""Milliseconds per training step and per inference batch, tinyseg against its PyTorch twin.

For every variant (CRF variants once per graph, dense and grid4): one training step (batch 29,
float32: zero_grad, forward, backward, the adversarial branch where the variant has one, Adam)
and one inference batch (eval mode: 10 mean-field iterations, no graph). tinyseg runs on numpy
(``--device cpu``) or cupy (``--device gpu``); the twin (`torch_reference.py`) on torch CPU or CUDA.
On the GPU a third implementation, "plain", is tinyseg with its hand-written CUDA fast paths
switched off (``TINYSEG_FAST_PATHS=0``), so each table shows what the fused kernels gained.

Method: each implementation is timed in its OWN process (one thread pool per
process: OpenBLAS and PyTorch's OpenMP threads in one process steal each other's cores), the
processes ALTERNATE (tinyseg, torch, tinyseg, torch, ... for ``--repeats`` rounds), each child
sets the same thread count in OMP/OPENBLAS/MKL_NUM_THREADS (and torch.set_num_threads) before
numpy or torch is imported, and the medians are compared. ``--threads 0`` is "nothing set": the
children get none of these variables and torch keeps its default, as a user who sets nothing. On the CPU each (variant, graph,
implementation, round) is a fresh process, whose ru_maxrss after warm-up + the timed steps is
the reported peak RSS. On the GPU one process per implementation and round runs every case
(CUDA start-up is slow); it syncs the device around each timed call and reports the memory its
pool held (cupy: pool total bytes; torch: max reserved).

    python benchmarks/train_step.py                          # CPU, all variants, 1 thread, 3 rounds
    python benchmarks/train_step.py --threads 1 2 --variants fcn fcn_crf
    python benchmarks/train_step.py --threads 1 0                # 1 thread, then nothing set
    python benchmarks/train_step.py --device gpu             # cupy vs torch CUDA, + ROIs/s at batch 1024

See: benchmarks/RESULTS.md, benchmarks/torch_reference.py.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import (VARIANTS, blas_summary, cases, child_env, has_crf, machine_facts, make_batch,  # noqa: E402
                     median, peak_rss_mb, thread_label)

IMPLS = ("tinyseg", "plain", "torch")
"""plain = tinyseg with its GPU fast paths off (TINYSEG_FAST_PATHS=0): the baseline the fused kernels beat."""


# ================================================================ child side
def _timed(fn: Callable[[], Any], warmup: int, n: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def _tinyseg_case(variant: str, graph: str, device: str, a: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from tinyseg import Tensor, no_grad
    from tinyseg.adversarial import loss_and_backward
    from tinyseg.backend import to_device
    from tinyseg.models import build_model
    from tinyseg.optim import Adam

    gpu = device == "gpu"
    if gpu:
        import cupy as cp

        pool = cp.get_default_memory_pool()
        pool.free_all_blocks()
        sync = cp.cuda.get_current_stream().synchronize
    else:
        def sync() -> None:
            return None
    kw = {"crf_graph": graph} if has_crf(variant) else {}
    model = build_model(variant, dtype=np.float32, **kw).to(device)
    x64, y64 = make_batch(a.batch)
    x, y = to_device(x64.astype(np.float32), device), to_device(y64, device)
    opt = Adam(model.parameters(), lr=3e-3)

    def step() -> None:
        model.zero_grad()
        # sync=False as in tinyseg.train: no device→host transfer inside the step (like the twin)
        loss_and_backward(model, x, y, adversarial=model.adversarial, eps=0.1, lam=0.5, sync=False)
        opt.step()
        sync()

    res: dict[str, Any] = {"step_ms": _timed(step, a.warmup, a.steps)}
    res["rss_mb"] = peak_rss_mb()
    if gpu:
        res["gpu_mem_mb"] = pool.total_bytes() / 2**20
    model.eval()

    def infer(xb: Any) -> Callable[[], None]:
        def run() -> None:
            with no_grad():
                model(Tensor(xb))
            sync()
        return run

    res["infer_ms"] = _timed(infer(x), 1, a.infer_steps)
    if gpu and variant in a.big_variants:
        xb = to_device(make_batch(a.big_batch, seed=1)[0].astype(np.float32), device)
        res["big_infer_ms"] = _timed(infer(xb), 1, max(3, a.infer_steps // 3))
        res["gpu_mem_infer_mb"] = pool.total_bytes() / 2**20
        del xb
    res["rss_after_infer_mb"] = peak_rss_mb()
    return res


def _torch_case(variant: str, graph: str, device: str, a: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import torch

    from torch_reference import build_torch_model, loss_and_backward

    dev = "cuda" if device == "gpu" else "cpu"
    if dev == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        sync = torch.cuda.synchronize
    else:
        def sync() -> None:
            return None
    model = build_torch_model(variant, graph if has_crf(variant) else "dense", torch.float32, dev)
    x64, y64 = make_batch(a.batch)
    x = torch.from_numpy(x64.astype(np.float32)).to(dev)
    y = torch.from_numpy(y64).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_and_backward(model, x, y, adversarial=model.adversarial, eps=0.1, lam=0.5)
        opt.step()
        sync()

    res: dict[str, Any] = {"step_ms": _timed(step, a.warmup, a.steps)}
    res["rss_mb"] = peak_rss_mb()
    if dev == "cuda":
        res["gpu_mem_mb"] = torch.cuda.max_memory_reserved() / 2**20
        res["gpu_alloc_mb"] = torch.cuda.max_memory_allocated() / 2**20
    model.eval()

    def infer(xb: Any) -> Callable[[], None]:
        def run() -> None:
            with torch.no_grad():
                model(xb)
            sync()
        return run

    res["infer_ms"] = _timed(infer(x), 1, a.infer_steps)
    if dev == "cuda" and variant in a.big_variants:
        xb = torch.from_numpy(make_batch(a.big_batch, seed=1)[0].astype(np.float32)).to(dev)
        res["big_infer_ms"] = _timed(infer(xb), 1, max(3, a.infer_steps // 3))
        res["gpu_mem_infer_mb"] = torch.cuda.max_memory_reserved() / 2**20
        del xb
    res["rss_after_infer_mb"] = peak_rss_mb()
    return res


def _versions(impl: str, device: str) -> dict[str, Any]:
    import numpy as np

    v: dict[str, Any] = {"numpy": np.__version__}
    if impl == "torch":
        import torch

        v["torch"] = torch.__version__
        v["torch_threads"] = torch.get_num_threads()
        import re

        m = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
        v["torch_blas"] = m.group(1) if m else "unknown"
        if device == "gpu":
            v["gpu"] = torch.cuda.get_device_name(0)
            v["cuda"] = torch.version.cuda
    elif device == "gpu":
        import cupy as cp

        v["cupy"] = cp.__version__
        v["cuda_runtime"] = cp.cuda.runtime.runtimeGetVersion()
        v["cuda_driver"] = cp.cuda.runtime.driverGetVersion()
        v["gpu"] = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    v["blas"] = blas_summary()
    return v


def child_main(a: argparse.Namespace) -> int:
    if a.impl == "torch" and a.threads_child > 0:  # 0: nothing set, torch's default
        import torch

        torch.set_num_threads(a.threads_child)
    run = _torch_case if a.impl == "torch" else _tinyseg_case
    out: dict[str, Any] = {"impl": a.impl, "results": []}
    for spec in a.child_cases:
        variant, graph = spec.split(":")
        r = run(variant, graph, a.device, a)
        r.update(variant=variant, graph=graph)
        out["results"].append(r)
    out["versions"] = _versions(a.impl, a.device)
    print("RESULT " + json.dumps(out), flush=True)
    return 0


# ================================================================ parent side
def _spawn(impl: str, specs: list[str], threads: int, a: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", impl, "--child-cases", *specs,
           "--device", a.device, "--threads-child", str(threads), "--steps", str(a.steps), "--warmup", str(a.warmup),
           "--infer-steps", str(a.infer_steps), "--batch", str(a.batch), "--big-batch", str(a.big_batch),
           "--big-variants", *a.big_variants]
    env = child_env(threads, a.native_blas)
    env["TINYSEG_FAST_PATHS"] = "0" if impl == "plain" else "1"
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=a.child_timeout)
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if p.returncode != 0 or line is None:
        raise RuntimeError(f"child {impl} {specs} failed (rc {p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}")
    return json.loads(line[len("RESULT "):])


def _torch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def run_all(a: argparse.Namespace) -> dict[str, Any]:
    impls = [i for i in a.impl if (i != "torch" or _torch_available()) and (i != "plain" or a.device == "gpu")]
    if "torch" in a.impl and "torch" not in impls:
        print("torch is not installed: timing tinyseg only (pip install torch==2.13.0 for the twin)")
    specs = [f"{v}:{g}" for v, g in cases(a.variants, a.graphs)]
    raw: dict[str, Any] = {"facts": machine_facts(), "native_blas": a.native_blas, "device": a.device,
                           "argv": sys.argv, "big_batch": a.big_batch, "runs": [], "versions": {}}
    groups = [specs] if a.device == "gpu" else [[s] for s in specs]  # CPU: a fresh process per case
    for group in groups:
        for rnd in range(a.repeats):
            for threads in a.threads:  # alternate the thread settings too
                for impl in impls:  # alternate: tinyseg, torch, tinyseg, torch, ...
                    load = os.getloadavg()[0]  # the 1-minute load average as the process starts
                    out = _spawn(impl, group, threads, a)
                    raw["versions"][impl] = out["versions"]
                    for r in out["results"]:
                        r.update(impl=impl, threads=threads, round=rnd, load=load)
                        raw["runs"].append(r)
                        if a.json:  # partial results survive a time-out
                            a.json.write_text(json.dumps({"raw": raw, "partial": True}, indent=1))
                        print(f"  [{thread_label(threads)}, round {rnd + 1}] {impl:<7} {r['variant']:<18} "
                              f"{r['graph']:<6} step {median(r['step_ms']):9.1f} ms   infer {median(r['infer_ms']):8.1f} ms"
                              f"   rss {r['rss_mb']:7.0f} MB   load {load:.2f}", flush=True)
    return raw


def summarize(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (threads, variant, graph): medians pooled over rounds, and the ratio."""
    keys: dict[tuple, dict[str, list[dict[str, Any]]]] = {}
    for r in raw["runs"]:
        keys.setdefault((r["threads"], r["variant"], r["graph"]), {}).setdefault(r["impl"], []).append(r)
    rows = []
    for (threads, variant, graph), by_impl in keys.items():
        row: dict[str, Any] = {"threads": threads, "variant": variant, "graph": graph}
        for impl, rs in by_impl.items():
            steps = [t for r in rs for t in r["step_ms"]]
            row[f"{impl}_step"] = median(steps)
            row[f"{impl}_round_medians"] = [round(median(r["step_ms"]), 1) for r in rs]
            row[f"{impl}_infer"] = median([t for r in rs for t in r["infer_ms"]])
            row[f"{impl}_rss"] = max(r["rss_mb"] for r in rs)
            if "load" in rs[0]:
                row[f"{impl}_load"] = [round(r["load"], 2) for r in rs]
            if "gpu_mem_mb" in rs[0]:
                row[f"{impl}_gpu_mem"] = max(r["gpu_mem_mb"] for r in rs)
            if "big_infer_ms" in rs[0]:
                big_ms = median([t for r in rs for t in r["big_infer_ms"]])
                row[f"{impl}_big_rois_s"] = raw["big_batch"] / (big_ms / 1e3)
        if "tinyseg_step" in row and "torch_step" in row:
            row["ratio"] = row["tinyseg_step"] / row["torch_step"]
            row["infer_ratio"] = row["tinyseg_infer"] / row["torch_infer"]
        if "tinyseg_step" in row and "plain_step" in row:
            row["fused_gain"] = row["plain_step"] / row["tinyseg_step"]
        rows.append(row)
    return rows


def _f(v: Any, fmt: str = "{:.1f}") -> str:
    return "—" if v is None else fmt.format(v)


def table(rows: list[dict[str, Any]], device: str) -> str:
    head = ["threads", "variant", "CRF graph", "tinyseg ms/step", "torch ms/step", "ratio", "tinyseg infer ms",
            "torch infer ms", "infer ratio", "tinyseg peak RSS MB", "torch peak RSS MB", "rounds (per implementation)"]
    if device == "gpu":
        head[9:11] = ["tinyseg GPU MB", "torch GPU MB"]
        head.insert(11, "ROIs/s @big (tinyseg / plain / torch)")
        head[5:5] = ["plain ms/step", "plain ÷ tinyseg"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [thread_label(r["threads"]), r["variant"], r["graph"], _f(r.get("tinyseg_step")), _f(r.get("torch_step")),
                 _f(r.get("ratio"), "{:.2f}×"), _f(r.get("tinyseg_infer")), _f(r.get("torch_infer")),
                 _f(r.get("infer_ratio"), "{:.2f}×")]
        if device == "gpu":
            cells[5:5] = [_f(r.get("plain_step")), _f(r.get("fused_gain"), "{:.2f}×")]
            cells += [_f(r.get("tinyseg_gpu_mem"), "{:.0f}"), _f(r.get("torch_gpu_mem"), "{:.0f}")]
            big = [r.get(f"{i}_big_rois_s") for i in IMPLS]
            cells.append("—" if big == [None] * 3 else " / ".join(_f(b, "{:.0f}") for b in big))
        else:
            cells += [_f(r.get("tinyseg_rss"), "{:.0f}"), _f(r.get("torch_rss"), "{:.0f}")]
        cells.append(" / ".join(str(r.get(f"{i}_round_medians", "—")) for i in IMPLS if f"{i}_step" in r))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--graphs", nargs="+", default=["dense", "grid4"], choices=["dense", "grid4"],
                    help="CRF graphs for the CRF variants (each reported separately)")
    ap.add_argument("--impl", nargs="+", default=list(IMPLS), choices=IMPLS)
    ap.add_argument("--repeats", type=int, default=None, help="alternating rounds (default 3 CPU, 2 GPU)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1],
                    help="thread counts to run (each for both implementations); 0 = nothing set")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per process (default 10 CPU, 20 GPU)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 2 CPU, 3 GPU)")
    ap.add_argument("--infer-steps", type=int, default=None, help="timed inference batches (default 5 CPU, 20 GPU)")
    ap.add_argument("--batch", type=int, default=29)
    ap.add_argument("--big-batch", type=int, default=1024, help="GPU: batch of the ROIs/s measurement")
    ap.add_argument("--big-variants", nargs="*", default=["multi_fcn_crf"], help="GPU: variants timed at --big-batch")
    ap.add_argument("--native-blas", action="store_true",
                    help="unset OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE in the children (benchmarks only)")
    ap.add_argument("--child-timeout", type=float, default=1800)
    ap.add_argument("--json", type=Path, help="write raw timings and the summary here")
    ap.add_argument("--markdown", type=Path, help="write the summary table (markdown) here")
    ap.add_argument("--child", choices=IMPLS, dest="child_impl", help=argparse.SUPPRESS)
    ap.add_argument("--child-cases", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--threads-child", type=int, default=1, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    gpu = a.device == "gpu"
    a.repeats = a.repeats or (2 if gpu else 3)
    a.steps = a.steps or (20 if gpu else 10)
    a.warmup = a.warmup if a.warmup is not None else (3 if gpu else 2)
    a.infer_steps = a.infer_steps or (20 if gpu else 5)
    if a.child_impl:
        a.impl = a.child_impl
        return child_main(a)

    t0 = time.perf_counter()
    print(f"train_step: device {a.device}, batch {a.batch}, float32, threads {a.threads}, {a.repeats} rounds × "
          f"({a.warmup} warm-up + {a.steps} steps), native BLAS {a.native_blas}", flush=True)
    raw = run_all(a)
    rows = summarize(raw)
    md = table(rows, a.device)
    facts = raw["facts"]
    print(f"\nmachine: {facts['cpu']}, {facts['cores']} cores; OPENBLAS_CORETYPE="
          f"{None if a.native_blas else facts['OPENBLAS_CORETYPE']}")
    for impl, v in raw["versions"].items():
        print(f"{impl}: " + json.dumps(v))
    print(f"command: python benchmarks/train_step.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(md)
    print(f"(total {time.perf_counter() - t0:.0f} s; ratio = tinyseg / torch medians; rounds = per-process medians)")
    if a.json:
        a.json.write_text(json.dumps({"raw": raw, "summary": rows}, indent=1))
    if a.markdown:
        a.markdown.write_text(md + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
