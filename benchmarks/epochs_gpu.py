"""Wall-clock time of many training epochs of one variant, end to end, with `tinyseg.train.Trainer`.

Default: 100 epochs of ``adv_multi_fcn_crf`` on the default data's training split (phantom,
inbreast preset: 46 training masses ×4 flips = 184 ROIs, 7 steps of ≤ 29 per epoch, each epoch
followed by the validation prediction that selects the best epoch, exactly as `fit` runs it;
checkpoint files are not written). One warm-up epoch runs first; the cold start (imports, data,
model build, first epoch) is reported separately. Target: < 10 s for 100 epochs on a
GPU after warm-up.

    python benchmarks/epochs_gpu.py --device gpu
    python benchmarks/epochs_gpu.py --device cpu --epochs 2 --crf-graph grid4

See: benchmarks/RESULTS.md.
"""
from __future__ import annotations

import time

T_PROCESS = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", choices=["cpu", "gpu"], default="gpu")
    ap.add_argument("--variant", default="adv_multi_fcn_crf")
    ap.add_argument("--epochs", type=int, default=100, help="timed epochs after the warm-up epoch")
    ap.add_argument("--crf-graph", choices=["dense", "grid4"], default="dense")
    ap.add_argument("--data", default="phantom", help="data spec (default: the synthetic default data)")
    ap.add_argument("--skip-val", action="store_true", help="time the training steps only (no validation pass)")
    ap.add_argument("--max-seconds", type=float, default=None,
                    help="stop the timed loop after this long and report the epochs done (and 100-epoch extrapolation)")
    ap.add_argument("--json", type=Path, help="write the timings here")
    a = ap.parse_args(argv)
    os.environ.setdefault("TINYSEG_CACHE", str(Path(tempfile.gettempdir()) / "tinyseg-bench-cache"))

    t0 = time.perf_counter()
    import numpy as np

    from tinyseg.data import load_dataset
    from tinyseg.train import TrainConfig, Trainer, prepare_data

    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    config = TrainConfig(variant=a.variant, data=a.data, epochs=a.epochs + 1, crf_graph=a.crf_graph, device=a.device)
    config.validate()
    dataset = load_dataset(config.data, data_seed=config.data_seed, val_frac=config.val_frac, boxes=config.boxes)
    data = prepare_data(dataset, np.dtype(config.dtype))
    t_data = time.perf_counter() - t0
    t0 = time.perf_counter()
    trainer = Trainer(config, data, a.device)
    if a.skip_val:
        trainer._vx = trainer._vx[:0]
    t_setup = time.perf_counter() - t0
    sync = _sync(a.device)

    t0 = time.perf_counter()
    trainer.run_epoch()  # warm-up: allocations, kernel compilation, caches
    sync()
    t_first = time.perf_counter() - t0
    cold = time.perf_counter() - T_PROCESS

    t0 = time.perf_counter()
    done = 0
    while done < a.epochs:
        trainer.run_epoch()
        done += 1
        if a.max_seconds is not None and time.perf_counter() - t0 > a.max_seconds:
            break
    sync()
    total = time.perf_counter() - t0
    if done < a.epochs:
        print(f"stopped after {done} of {a.epochs} epochs (--max-seconds {a.max_seconds}); "
              f"{a.epochs} epochs extrapolated: {total / done * a.epochs:.1f} s")
    a.epochs = done
    n, bs = len(data.train_x), config.batch_size
    steps = -(-n // bs)
    rows = trainer.history[1:]
    out = {"variant": a.variant, "crf_graph": a.crf_graph, "device": a.device, "epochs": a.epochs,
           "train_rois": n, "steps_per_epoch": steps, "validation_rois": 0 if a.skip_val else len(data.val_x),
           "seconds_total": total, "seconds_per_100_epochs": 100 * total / a.epochs, "ms_per_epoch": 1e3 * total / a.epochs,
           "ms_per_step_incl_val": 1e3 * total / (a.epochs * steps),
           "cold_start_s": cold, "import_s": t_import, "data_s": t_data, "setup_s": t_setup, "first_epoch_s": t_first,
           "final_train_loss": rows[-1]["train_loss"] if rows else None,
           "final_val_dice": rows[-1]["val_dice"] if rows else None, "argv": sys.argv}
    print(f"{a.variant} ({a.crf_graph}) on {a.device}: {a.epochs} epochs × {steps} steps ({n} ROIs"
          f"{'' if a.skip_val else f', + validation on {len(data.val_x)} ROIs'}) in {total:.2f} s "
          f"= {out['ms_per_epoch']:.1f} ms/epoch, {out['ms_per_step_incl_val']:.1f} ms/step")
    print(f"cold start {cold:.2f} s (imports {t_import:.2f} s, data {t_data:.2f} s, model {t_setup:.2f} s, "
          f"first epoch {t_first:.2f} s); final train loss {out['final_train_loss']:.4f}, "
          f"val Dice {out['final_val_dice']:.4f}")
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))
    return 0


def _sync(device: str):  # noqa: ANN202
    if device == "gpu":
        import cupy as cp

        return cp.cuda.get_current_stream().synchronize
    return lambda: None


if __name__ == "__main__":
    sys.exit(main())
