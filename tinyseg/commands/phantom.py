"""`tinyseg phantom`: write the synthetic dataset to disk, as npz or in a real dataset's format.

    tinyseg phantom --preset inbreast --out data/phantom --format npz        # ROI canvases
    tinyseg phantom --preset inbreast --out data/inbreast --format inbreast  # AllDICOMs/, AllXML/, INbreast.csv
    tinyseg phantom --preset ddsm_bcrp --out data/cbis --format cbis         # CBIS-DDSM tree + CSVs

Read back with `--data npz:DIR/phantom.npz`, `inbreast:DIR` or `cbis:DIR`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError

HELP = "write the synthetic mammography dataset as npz, an INbreast-format or a CBIS-DDSM-like folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `tinyseg phantom`."""
    parser.add_argument("--preset", default="inbreast", help="inbreast (116 masses) or ddsm_bcrp (84 + 87)")
    parser.add_argument("--out", required=True, help="output folder (npz: a folder or a .npz file name)")
    parser.add_argument("--format", default="npz", choices=("npz", "inbreast", "cbis"), help="output format")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic data (default 0)")
    parser.add_argument("--n-masses", type=int, default=None,
                        help="inbreast/cbis formats: write only this many masses (default: the preset's count)")


def run(args: argparse.Namespace) -> int:
    """Generate and write; prints where the data went and the spec that reads it back."""
    from tinyseg.data import generate_mammograms, generate_rois, get_preset  # noqa: PLC0415  (keeps --help fast)
    from tinyseg.data.writers import write_cbis, write_inbreast, write_npz  # noqa: PLC0415

    preset = get_preset(args.preset)
    out = Path(args.out)
    if out.exists() and not out.is_dir() and args.format != "npz":
        raise UserError(f"--out {out} is a file; the {args.format} format writes a folder")
    if args.format == "npz":
        path = write_npz(generate_rois(preset, args.data_seed), out, preset, args.data_seed)
        print(f"wrote {preset.n} ROI canvases to {path}  (read with --data npz:{path})")
        return 0
    if args.n_masses is not None and args.n_masses < 1:
        raise UserError(f"--n-masses must be >= 1, got {args.n_masses}")
    # With --n-masses the first half of the masses is the training split (the INbreast loader's default).
    n_train = preset.n_train if args.n_masses is None else (args.n_masses + 1) // 2
    mammograms = generate_mammograms(preset, args.data_seed, n_masses=args.n_masses, n_train=n_train)
    n = sum(len(m.masses) for m in mammograms)
    if args.format == "inbreast":
        write_inbreast(mammograms, out)
    else:
        write_cbis(mammograms, out, n_train)
    print(f"wrote {len(mammograms)} mammograms with {n} masses to {out}  (read with --data {args.format}:{out})")
    return 0
