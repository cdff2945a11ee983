"""`tinyseg phantom`: write the synthetic dataset to disk, as npz or in a real dataset's format.

    tinyseg phantom --preset inbreast --out data/phantom --format npz        # ROI canvases
    tinyseg phantom --preset inbreast --out data/inbreast --format inbreast  # AllDICOMs/, AllXML/, INbreast.csv
    tinyseg phantom --preset ddsm_bcrp --out data/cbis --format cbis         # CBIS-DDSM tree + CSVs

Read back with `--data npz:DIR/phantom.npz`, `inbreast:DIR` or `cbis:DIR`. For full-field
images (e.g. to time `tinyseg segment` on them) pass ``--size 4800x3000`` (rows x columns; about
10 s and 1 GB per image) and ``--rle`` for RLE Lossless DICOMs.
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from ..config import CHOICES
from ..errors import UserError
from . import BOXES_HELP

HELP = "write the synthetic mammography dataset as npz, an INbreast-format or a CBIS-DDSM-like folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `tinyseg phantom`."""
    parser.add_argument("--preset", default="inbreast", help="inbreast (116 masses) or ddsm_bcrp (84 + 87)")
    parser.add_argument("--out", required=True, help="output folder (npz: a folder or a .npz file name)")
    parser.add_argument("--format", default="npz", choices=("npz", "inbreast", "cbis"), help="output format")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic data (default 0)")
    parser.add_argument("--boxes", choices=CHOICES["boxes"], default="tight",
                        help=BOXES_HELP + ". npz format: drawn writes larger canvases (room for a drawn box around "
                             "each mass), read back with --boxes drawn; inbreast/cbis hold whole mammograms, from "
                             "which either kind of box is cut when read")
    parser.add_argument("--n-masses", type=int, default=None,
                        help="inbreast/cbis formats: write only this many masses (default: the preset's count)")
    parser.add_argument("--size", default="1024x832", metavar="HxW",
                        help="inbreast/cbis formats: image rows x columns (default 1024x832; full field e.g. "
                             "4800x3000); the pixel size shrinks so that the breast keeps its size in mm")
    parser.add_argument("--rle", action="store_true", help="inbreast/cbis formats: RLE Lossless DICOMs")


def parse_size(text: str) -> tuple[int, int]:
    """'HxW' → (H, W), each at least 256."""
    try:
        H, W = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--size must be ROWSxCOLUMNS, e.g. 4800x3000, got {text!r}") from None
    if min(H, W) < 256:
        raise UserError(f"--size {text!r} is too small: a mammogram needs at least 256x256 pixels")
    return H, W


def run(args: argparse.Namespace) -> int:
    """Generate and write; prints where the data went and the spec that reads it back."""
    from tinyseg.data import generate_mammograms, generate_rois, get_preset  # noqa: PLC0415  (keeps --help fast)
    from tinyseg.data.writers import write_cbis, write_inbreast, write_npz  # noqa: PLC0415

    preset = get_preset(args.preset)
    out = Path(args.out)
    if out.exists() and not out.is_dir() and args.format != "npz":
        raise UserError(f"--out {out} is a file; the {args.format} format writes a folder")
    if args.format == "npz":
        drawn = args.boxes == "drawn"
        canvases = generate_rois(replace(preset, canvas=preset.drawn_canvas) if drawn else preset, args.data_seed)
        path = write_npz(canvases, out, preset, args.data_seed, boxes=args.boxes)
        print(f"wrote {preset.n} ROI canvases to {path}  (read with --data npz:{path}"
              f"{' --boxes drawn' if drawn else ''})")
        return 0
    if args.boxes == "drawn":
        raise UserError(f"--boxes drawn changes only --format npz (the ROI canvases); a {args.format} folder holds "
                        f"whole mammograms, from which drawn boxes are cut when it is read: write it without "
                        f"--boxes, then pass --data {args.format}:{out} --boxes drawn to train, evaluate or table2")
    if args.n_masses is not None and args.n_masses < 1:
        raise UserError(f"--n-masses must be >= 1, got {args.n_masses}")
    # With --n-masses the first half of the masses is the training split (the INbreast loader's default).
    n_train = preset.n_train if args.n_masses is None else (args.n_masses + 1) // 2
    mammograms = generate_mammograms(preset, args.data_seed, n_masses=args.n_masses, n_train=n_train,
                                     size=parse_size(args.size))
    n = sum(len(m.masses) for m in mammograms)
    if args.format == "inbreast":
        write_inbreast(mammograms, out, rle=args.rle)
    else:
        write_cbis(mammograms, out, n_train, rle=args.rle)
    print(f"wrote {len(mammograms)} mammograms with {n} masses to {out}  (read with --data {args.format}:{out})")
    return 0
