"""ROI boxes: tight (the paper's protocol, unchanged) and drawn (a box as a person or a detector
draws it): containment, seeding, independence of the mass's size, sources that refuse drawn boxes,
the cache, and the option's way through config.json, `evaluate` and the command line."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyseg.cli import build_parser
from tinyseg.cli import main as cli_main
from tinyseg.commands import BOXES_HELP
from tinyseg.config import CHOICES, TrainConfig
from tinyseg.data import generate_mammograms, generate_rois, get_preset, load_dataset, mammogram_samples
from tinyseg.data.boxes import DRAWN_FACTOR, box_rng, draw_box
from tinyseg.data.preprocess import mask_box
from tinyseg.errors import UserError

SMALL = {"n_train": 8, "n_test": 4}  # a small phantom preset: 12 masses, built in about a second


def _sha(samples: list[tuple[np.ndarray, np.ndarray, list]]) -> str:
    h = hashlib.sha256()
    for image, label, box in samples:
        h.update(np.ascontiguousarray(image).tobytes())
        h.update(np.ascontiguousarray(label).tobytes())
        h.update(repr(box).encode())
    return h.hexdigest()[:16]


def _dataset_sha(ds) -> str:  # noqa: ANN001
    return _sha([(s.images, s.labels, [m["box"] for m in s.meta]) for s in (ds.train, ds.val, ds.test)])


# Computed from the code before the `boxes` option existed: the tight data must never change.
TIGHT_SHA = {"phantom": "60f0d04ef794de93", "phantom:ddsm_bcrp": "c6ef813a90edbeda"}
TIGHT_MAMMOGRAM_SHA = "b74fcad301ffc3b9"  # mammogram_samples(generate_mammograms("inbreast", 5, 4, 2), 2)


@pytest.mark.parametrize("spec", sorted(TIGHT_SHA))
def test_tight_data_is_bit_identical_to_the_data_before_drawn_boxes(spec: str) -> None:
    ds = load_dataset(spec, cache=False)
    assert _dataset_sha(ds) == TIGHT_SHA[spec]
    assert _dataset_sha(load_dataset(spec, cache=False, boxes="tight")) == TIGHT_SHA[spec]


def test_tight_rois_of_real_format_mammograms_are_unchanged() -> None:
    samples = mammogram_samples(generate_mammograms("inbreast", 5, n_masses=4, n_train=2), 2)
    assert _sha([(s["image"], s["label"], s["meta"]["box"]) for s in samples]) == TIGHT_MAMMOGRAM_SHA


@settings(max_examples=300, deadline=None)
@given(W=st.integers(1, 300), H=st.integers(1, 300), data=st.data(), seed=st.integers(0, 2 ** 32 - 1))
def test_drawn_box_contains_the_mass_box_and_lies_inside_the_image(W: int, H: int, data, seed: int) -> None:  # noqa: ANN001
    x0 = data.draw(st.integers(0, W - 1))
    x1 = data.draw(st.integers(x0, W - 1))
    y0 = data.draw(st.integers(0, H - 1))
    y1 = data.draw(st.integers(y0, H - 1))
    bx0, by0, bx1, by1 = draw_box((x0, y0, x1, y1), (H, W), box_rng(seed, "m"))
    assert 0 <= bx0 <= x0 and x1 <= bx1 <= W - 1, ((x0, x1), (bx0, bx1), W)
    assert 0 <= by0 <= y0 and y1 <= by1 <= H - 1, ((y0, y1), (by0, by1), H)
    lo, hi = DRAWN_FACTOR
    for side, box_side, n in ((x1 - x0 + 1, bx1 - bx0 + 1, W), (y1 - y0 + 1, by1 - by0 + 1, H)):
        # the drawn side, rounded, unless the image is too small for it (then the whole image)
        assert box_side == n or np.floor(lo * side + 0.5) <= box_side <= np.floor(hi * side + 0.5)


def test_drawn_box_factors_are_uniform_and_the_mass_sits_anywhere() -> None:
    mass, shape = (400, 300, 499, 379), (1000, 1000)  # 100 × 80 px, far from every edge
    boxes = np.array([draw_box(mass, shape, box_rng(0, k)) for k in range(3000)])
    fx = (boxes[:, 2] - boxes[:, 0] + 1) / 100
    fy = (boxes[:, 3] - boxes[:, 1] + 1) / 80
    lo, hi = DRAWN_FACTOR
    for f in (fx, fy):
        assert f.min() >= lo - 0.01 and f.max() <= hi + 0.01
        assert abs(f.mean() - (lo + hi) / 2) < 0.02  # U(lo, hi): mean (lo + hi)/2
        assert np.histogram(f, 5, (lo, hi))[0].min() > 450  # no fifth of the range is starved (600 expected)
    # The mass's position: the fraction of the slack left of (above) it is uniform on [0, 1].
    left = (mass[0] - boxes[:, 0]) / np.maximum(boxes[:, 2] - boxes[:, 0] + 1 - 100, 1)
    top = (mass[1] - boxes[:, 1]) / np.maximum(boxes[:, 3] - boxes[:, 1] + 1 - 80, 1)
    for u in (left, top):
        assert abs(u.mean() - 0.5) < 0.03 and u.min() == 0 and u.max() == 1
    assert abs(np.corrcoef(fx, fy)[0, 1]) < 0.1  # per axis, independently


@pytest.fixture(scope="module")
def drawn_phantom(tmp_path_factory):  # noqa: ANN001, ANN201
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TINYSEG_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield load_dataset("phantom", boxes="drawn")


def test_every_drawn_phantom_box_contains_its_mass_and_never_meets_the_canvas_edge(drawn_phantom) -> None:  # noqa: ANN001
    preset = get_preset("inbreast")
    canvases = generate_rois(dataclasses.replace(preset, canvas=preset.drawn_canvas), 0)
    metas = drawn_phantom.train.meta + drawn_phantom.val.meta + drawn_phantom.test.meta
    assert len(metas) == len(canvases) == 116
    S = preset.drawn_canvas
    ratios, sides = [], []
    for meta, canvas in zip(metas, canvases):
        assert meta["index"] == canvas.meta["index"]
        mx0, my0, mx1, my1 = mask_box(canvas.mask)
        bx0, by0, bx1, by1 = meta["box"]
        assert bx0 <= mx0 and by0 <= my0 and mx1 <= bx1 and my1 <= by1, (meta["index"], meta["box"])
        # never shifted or clipped by the canvas edge, so the box's size is the drawn one
        assert 0 < bx0 and 0 < by0 and bx1 < S - 1 and by1 < S - 1, (meta["index"], meta["box"])
        sides.append(mx1 - mx0 + 1)
        ratios.append((bx1 - bx0 + 1) / (mx1 - mx0 + 1))
    # Box size relative to the mass does not depend on the mass's size (at 192 px it did: big masses
    # got boxes clipped to the canvas).
    assert abs(np.corrcoef(sides, ratios)[0, 1]) < 0.3
    # The mass fills about 1 / E[fx fy] ≈ 1/2.1 of what it fills in a tight box (67 %).
    assert 0.25 < drawn_phantom.test.labels.mean() < 0.40


def test_drawn_phantom_is_the_same_masses_as_tight(drawn_phantom) -> None:  # noqa: ANN001
    tight = load_dataset("phantom", cache=False, preset_overrides=SMALL)
    drawn = load_dataset("phantom", cache=False, preset_overrides=SMALL, boxes="drawn")
    for a, b in zip(tight.train.meta + tight.test.meta, drawn.train.meta + drawn.test.meta):
        assert {k: a[k] for k in ("index", "shape", "margin", "radius_px", "contrast")} == \
            {k: b[k] for k in ("index", "shape", "margin", "radius_px", "contrast")}
    assert drawn_phantom.kind == "inbreast"


def test_the_same_data_seed_gives_the_same_boxes_and_another_seed_other_boxes(tmp_cache: Path) -> None:
    a = load_dataset("phantom", boxes="drawn", preset_overrides=SMALL, cache=False)
    b = load_dataset("phantom", boxes="drawn", preset_overrides=SMALL, cache=False)
    c = load_dataset("phantom", boxes="drawn", preset_overrides=SMALL, data_seed=1, cache=False)
    assert _dataset_sha(a) == _dataset_sha(b)
    assert [m["box"] for m in a.train.meta] != [m["box"] for m in c.train.meta]


def _folder(root: Path, n: int = 6) -> Path:
    """A folder dataset of n 120×100 images with one elliptic mass each."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:120, 0:100]
    rows = ["name,split"]
    for i in range(n):
        cx, cy = rng.uniform(30, 70), rng.uniform(30, 90)
        mask = ((xx - cx) / 15) ** 2 + ((yy - cy) / 20) ** 2 <= 1
        np.save(root / "images" / f"m{i}.npy", (1000 + 300 * mask + rng.normal(0, 30, mask.shape)).astype(np.uint16))
        np.save(root / "masks" / f"m{i}.npy", mask.astype(np.uint8))
        rows.append(f"m{i},{'train' if i < n - 2 else 'test'}")
    (root / "split.csv").write_text("\n".join(rows) + "\n")
    return root


def test_real_sources_draw_boxes_around_the_annotated_mass(tmp_cache: Path, tmp_path: Path) -> None:
    root = _folder(tmp_path / "f")
    tight = load_dataset(f"folder:{root}", val_frac=0)
    drawn = load_dataset(f"folder:{root}", val_frac=0, boxes="drawn")
    again = load_dataset(f"folder:{root}", val_frac=0, boxes="drawn", cache=False)
    other = load_dataset(f"folder:{root}", val_frac=0, boxes="drawn", data_seed=1)
    for t, d in zip(tight.train.meta + tight.test.meta, drawn.train.meta + drawn.test.meta):
        tx0, ty0, tx1, ty1 = t["box"]  # the tight box is the mask's bounding box
        dx0, dy0, dx1, dy1 = d["box"]
        assert dx0 <= tx0 and dy0 <= ty0 and tx1 <= dx1 and ty1 <= dy1
        assert (dx1 - dx0) * (dy1 - dy0) > (tx1 - tx0) * (ty1 - ty0)
    assert _dataset_sha(drawn) == _dataset_sha(again)
    # The seed enters the cache key for drawn boxes of real data: seed 1 is not seed 0's cache entry.
    assert [m["box"] for m in drawn.train.meta] != [m["box"] for m in other.train.meta]
    assert len(list((tmp_cache / "datasets").glob("*.npz"))) == 3


def test_inbreast_files_and_in_memory_mammograms_give_the_same_drawn_boxes(tmp_path: Path) -> None:
    from tinyseg.data.inbreast import load_inbreast
    from tinyseg.data.writers import write_inbreast

    mammograms = generate_mammograms("inbreast", 5, n_masses=4, n_train=2)
    root = write_inbreast(mammograms, tmp_path / "inbreast")
    from_files = load_inbreast(root, boxes="drawn", box_seed=3)
    in_memory = mammogram_samples(mammograms, 2, boxes="drawn", box_seed=3)
    tight = mammogram_samples(mammograms, 2)
    assert [s["meta"]["box"] for s in from_files] == [s["meta"]["box"] for s in in_memory]
    assert all(np.array_equal(a["image"], b["image"]) for a, b in zip(from_files, in_memory))
    for d, t in zip(in_memory, tight):
        assert d["meta"]["box"] != t["meta"]["box"]
        assert d["meta"]["box"][:2] <= t["meta"]["box"][:2] and d["meta"]["box"][2:] >= t["meta"]["box"][2:]


def test_the_cache_keeps_the_protocols_and_every_data_option_apart(tmp_cache: Path) -> None:
    tight = load_dataset("phantom", preset_overrides=SMALL)
    drawn = load_dataset("phantom", preset_overrides=SMALL, boxes="drawn")
    assert not np.array_equal(tight.train.images, drawn.train.images)
    assert drawn.options["boxes"] == "drawn" and tight.options["boxes"] == "tight"
    # Every option that changes the arrays gets its own file, and reading back gives the same arrays.
    variants = [{}, {"boxes": "drawn"}, {"boxes": "drawn", "data_seed": 1}, {"data_seed": 1},
                {"crop_scale": 1.2}, {"label_resize": "nearest"}, {"clahe_hist_range": "dtype"},
                {"gt_dilate_px": 1}, {"difficulty": "hard"}]
    shas = []
    for v in variants:
        opts = dict(v)
        seed = opts.pop("data_seed", 0)
        shas.append(_dataset_sha(load_dataset("phantom", data_seed=seed, preset_overrides=SMALL, **opts)))
        assert _dataset_sha(load_dataset("phantom", data_seed=seed, preset_overrides=SMALL, **opts)) == shas[-1]
    assert len(set(shas)) == len(variants)
    assert len(list((tmp_cache / "datasets").glob("*.npz"))) == len(variants)


def test_sources_without_a_mass_outline_refuse_drawn_boxes(tmp_cache: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert cli_main(["phantom", "--out", str(tmp_path / "tight.npz")]) == 0
    with pytest.raises(UserError, match="--boxes drawn"):
        load_dataset(f"npz:{tmp_path / 'tight.npz'}", boxes="drawn")
    root = _folder(tmp_path / "f")
    with pytest.raises(UserError, match="roi='whole'"):
        load_dataset(f"folder:{root}", roi="whole", boxes="drawn")
    with pytest.raises(UserError, match="crop_scale"):
        load_dataset("phantom", crop_scale=1.2, boxes="drawn")
    with pytest.raises(UserError, match="boxes='sloppy'"):
        load_dataset("phantom", boxes="sloppy")
    assert not (tmp_cache / "datasets").exists()  # refused before anything was built
    capsys.readouterr()
    assert cli_main(["train", "--data", f"npz:{tmp_path / 'tight.npz'}", "--boxes", "drawn", "--epochs", "1",
                     "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "tinyseg train: error:" in err and "--boxes tight" in err
    assert not (tmp_path / "run").exists()
    assert cli_main(["phantom", "--format", "inbreast", "--boxes", "drawn", "--out", str(tmp_path / "ib")]) == 2
    assert "--boxes drawn" in capsys.readouterr().err and not (tmp_path / "ib").exists()


def test_npz_written_for_drawn_boxes_gives_the_phantom_drawn_rois(tmp_cache: Path, tmp_path: Path) -> None:
    from tinyseg.data.writers import write_npz

    preset = get_preset("inbreast", **SMALL)
    rois = generate_rois(dataclasses.replace(preset, canvas=preset.drawn_canvas), 0)
    path = write_npz(rois, tmp_path / "d.npz", preset, 0, boxes="drawn")
    from_file = load_dataset(f"npz:{path}", boxes="drawn")
    in_memory = load_dataset("phantom", preset_overrides=SMALL, boxes="drawn")
    assert _dataset_sha(from_file) == _dataset_sha(in_memory)


def test_boxes_round_trip_through_config_json_and_evaluate_uses_them(tmp_cache: Path, tmp_path: Path,
                                                                     monkeypatch) -> None:  # noqa: ANN001
    import tinyseg.data

    run = tmp_path / "run"
    assert cli_main(["train", "--variant", "fcn", "--boxes", "drawn", "--epochs", "1", "--device", "cpu",
                     "--quiet", "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["boxes"] == "drawn"
    before = (run / "metrics.json").read_text()
    calls = []
    real = tinyseg.data.load_dataset

    def spy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(kwargs.get("boxes"))
        return real(*args, **kwargs)

    monkeypatch.setattr(tinyseg.data, "load_dataset", spy)
    assert cli_main(["evaluate", str(run), "--no-figures"]) == 0
    assert calls == ["drawn"]
    # evaluating again on the run's own data reproduces its recorded test numbers
    assert json.loads((run / "metrics.json").read_text())["test"] == json.loads(before)["test"]
    assert cli_main(["evaluate", str(run), "--no-figures", "--boxes", "tight"]) == 0
    assert calls == ["drawn", "tight"]
    assert (run / "metrics_phantom_seed0.json").exists()  # another protocol never overwrites metrics.json
    assert json.loads((run / "metrics.json").read_text())["test"] == json.loads(before)["test"]
    # A dataset loaded with other boxes than the run's is refused.
    with pytest.raises(UserError, match="boxes="):
        tinyseg.fit(TrainConfig(boxes="drawn", epochs=1, device="cpu"), tmp_path / "r2", quiet=True,
                    dataset=real("phantom", preset_overrides=SMALL))


def test_every_command_that_reads_data_takes_the_one_boxes_option() -> None:
    import argparse

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for command in ("train", "evaluate", "table2", "phantom"):
        (action,) = [a for a in subs[command]._actions if a.dest == "boxes"]
        assert action.option_strings == ["--boxes"] and tuple(action.choices) == CHOICES["boxes"], command
        assert "tight" in action.help and "drawn" in action.help, command
    assert f"{DRAWN_FACTOR[0]}-{DRAWN_FACTOR[1]}" in BOXES_HELP  # the help states the factor the code draws
    assert TrainConfig().boxes == "tight" == CHOICES["boxes"][0]


def test_table2_records_its_boxes_and_tight_tables_render_as_before(tmp_cache: Path, tmp_path: Path) -> None:
    from tinyseg.experiments import render_markdown, run_table2

    table = run_table2("phantom", 1, 1, ["fcn"], tmp_path / "t", fast=True, device="cpu", boxes="drawn", quiet=True)
    assert table["command"]["boxes"] == "drawn"
    assert json.loads((tmp_path / "t" / "runs" / "fcn_s0" / "config.json").read_text())["train"]["boxes"] == "drawn"
    assert "drawn boxes" in (tmp_path / "t" / "table2.md").read_text().splitlines()[0]
    # the committed tight tables predate the option: they read as tight and render exactly as committed
    root = Path(__file__).resolve().parents[2] / "docs" / "results"
    for preset in ("phantom", "ddsm_bcrp"):
        committed = json.loads((root / preset / "table2.json").read_text())
        assert committed["command"].get("boxes", "tight") == "tight"
        assert render_markdown(committed) == (root / preset / "table2.md").read_text()
