"""Wall time and peak memory of `tinyseg segment` on a full-field 16-bit DICOM, cold process.

Targets: one 3,000 × 4,800 (columns × rows) 16-bit mammogram, uncompressed or RLE Lossless, one
box, an `fcn` run, the whole process (Python start, imports, model load, read, predict, write
mask + crop overlay) under 2 s wall and under 400 MB peak RSS on a 2-core CPU.

The script prepares, once, under ``--work`` (default ``/tmp/tinyseg_segment_bench``): a full-field
synthetic mammogram (`generate_mammogram(size=(4800, 3000))`, ~10 s), written uncompressed and RLE
Lossless, and a 1-epoch `fcn` run on 16 synthetic ROIs. Then it runs ``python -m tinyseg segment``
``--repeats`` times per file and overlay mode, each a fresh process, alternating the files, and
reports the median wall time and the median of each process's own ru_maxrss (from `os.wait4`).

    python benchmarks/segment_dicom.py                       # 5 rounds, overlay crop
    python benchmarks/segment_dicom.py --overlay crop full --repeats 3

See: benchmarks/RESULTS.md ("Segmenting a full-field DICOM").
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import child_env, machine_facts, median  # noqa: E402

SIZE = (4800, 3000)  # (rows, columns)


def prepare(work: Path) -> None:
    """Make the run, the two DICOMs and the box of the image's mass (once; later calls reuse them).

    Runs in its own process (``--prepare``): a child's ru_maxrss starts at its parent's peak
    (Linux carries it across fork and exec), so the timing parent must stay small.
    """
    from tinyseg.data import get_preset, load_dataset
    from tinyseg.data.image_io import write_dicom
    from tinyseg.data.mammogram import generate_mammogram
    from tinyseg.data.preprocess import mask_box
    from tinyseg.data.raster import rasterize_polygon
    from tinyseg.experiments import fast_subset
    from tinyseg.config import TrainConfig
    from tinyseg.train import fit

    work.mkdir(parents=True, exist_ok=True)
    files = {"uncompressed": work / "full_field.dcm", "rle": work / "full_field_rle.dcm"}
    box_file = work / "box.txt"
    if not all(p.exists() for p in files.values()) or not box_file.exists():
        print(f"generating a {SIZE[0]} x {SIZE[1]} synthetic mammogram ...", file=sys.stderr, flush=True)
        m = generate_mammogram(get_preset("inbreast"), 0, 0, 1, size=SIZE)
        for name, path in files.items():
            write_dicom(path, m.pixels, laterality=m.laterality, view=m.view, spacing_mm=m.spacing_mm,
                        rle=name == "rle")
        x0, y0, x1, y1 = mask_box(rasterize_polygon(m.masses[0]["polygon"], m.pixels.shape))
        box_file.write_text(f"{x0},{y0},{x1},{y1}")
    run_dir = work / "run_fcn"
    if not (run_dir / "model.npz").exists():
        print("training a 1-epoch fcn run ...", file=sys.stderr, flush=True)
        ds = fast_subset(load_dataset("phantom"), 16, 4)
        fit(TrainConfig(variant="fcn", epochs=1, device="cpu"), run_dir, quiet=True, dataset=ds)


def prepared(work: Path) -> tuple[Path, dict[str, Path], tuple[int, int, int, int]]:
    """(run directory, {name: DICOM}, box), prepared by a child process."""
    subprocess.run([sys.executable, __file__, "--prepare", "--work", str(work)], check=True)
    files = {"uncompressed": work / "full_field.dcm", "rle": work / "full_field_rle.dcm"}
    box = tuple(int(v) for v in (work / "box.txt").read_text().split(","))
    return work / "run_fcn", files, box  # type: ignore[return-value]


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall seconds, peak RSS MiB, CPU seconds user + system) of one fresh child process.

    On a shared machine the wall time grows with the load; the CPU time much less.
    """
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode() if p.stderr else ""
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {err}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/tinyseg_segment_bench"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2, help="BLAS/OpenMP threads of each child (default 2)")
    ap.add_argument("--overlay", nargs="+", default=["crop"], choices=("crop", "full", "none"))
    ap.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.prepare:
        return prepare(args.work)
    run_dir, files, box = prepared(args.work)
    env = child_env(args.threads, native_blas=False)
    results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for _ in range(args.repeats):
        for overlay in args.overlay:
            for name, path in files.items():  # alternating the files, round after round
                out = args.work / f"mask_{name}_{overlay}.png"
                cmd = [sys.executable, "-m", "tinyseg", "segment", str(run_dir), str(path),
                       "--roi", ",".join(map(str, box)), "--out", str(out), "--overlay", overlay, "--quiet"]
                results.setdefault((name, overlay), []).append(timed(cmd, env))
    facts = machine_facts()
    print(f"machine: {facts['cpu']}, {facts['cores']} cores, Python {facts['python']}; "
          f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}; {args.threads} BLAS threads")
    print(f"image {SIZE[0]} x {SIZE[1]} uint16, box {box}, {args.repeats} fresh processes each")
    print("| file | overlay | median wall (s) | median CPU (s) | median peak RSS (MiB) | all walls (s) "
          "| verdict (< 2 s, < 400 MB) |")
    print("|---|---|---|---|---|---|---|")
    for (name, overlay), runs in results.items():
        wall, rss, cpu = (median([r[i] for r in runs]) for i in range(3))
        ok = wall < 2 and rss * 1.048576 < 400
        print(f"| {name} | {overlay} | {wall:.2f} | {cpu:.2f} | {rss:.0f} | {', '.join(f'{r[0]:.2f}' for r in runs)} "
              f"| {'meets' if ok else 'misses'} |")


if __name__ == "__main__":
    main()
