"""Fuzzing the XML and CSV parsers: every mutated file parses to sane values or raises DataFormatError."""
from __future__ import annotations

import plistlib

import numpy as np
import pytest

from tinyseg.data.cbis import parse_cbis_csv
from tinyseg.data.errors import DataFormatError, WarningCounter
from tinyseg.data.folder import parse_split_csv
from tinyseg.data.image_io import write_dicom
from tinyseg.data.inbreast import load_inbreast, parse_inbreast_csv, parse_inbreast_xml
from tinyseg.data.writers import CBIS_CSV_HEADER

TOKENS = [b"nan", b"inf", b"1e999", b"-", b"", b"(", b")", b",", b";", b"\n", b'"', b"<", b">", b"&", b"</string>",
          b"<integer>x</integer>", b"<array/>", b"<dict>", b"\xff\xfe", b"-1e5", b"(1,", b"0x1F"]


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One to three random edits: delete, duplicate, insert, replace, truncate, swap lines, swap tags."""
    for _ in range(int(rng.integers(1, 4))):
        n = len(data)
        i = int(rng.integers(0, max(n, 1)))
        j = min(n, i + int(rng.integers(1, 60)))
        op = int(rng.integers(0, 7))
        if op == 0:
            data = data[:i] + data[j:]
        elif op == 1:
            data = data[:j] + data[i:j] + data[j:]
        elif op == 2:
            data = data[:i] + TOKENS[int(rng.integers(len(TOKENS)))] + data[i:]
        elif op == 3:
            data = data[:i] + bytes([int(rng.integers(0, 256))]) + data[i + 1:]
        elif op == 4:
            data = data[:i]
        elif op == 5:
            lines = data.split(b"\n")
            a, b = rng.integers(0, len(lines), 2)
            lines[a], lines[b] = lines[b], lines[a]
            data = b"\n".join(lines)
        else:
            tags = [b"string", b"integer", b"real", b"array", b"dict", b"key"]
            old, new = rng.choice(len(tags), 2, replace=False)
            data = data.replace(tags[old], tags[new], int(rng.integers(1, 4)))
    return data


def _base_xml() -> bytes:
    t = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    mass = [f"({50 + 20 * np.cos(a):.6f}, {40 + 15 * np.sin(a):.6f})" for a in t]
    rois = [{"Name": "Calcification", "NumberOfPoints": 1, "Point_px": ["(10.5, 20.25)"], "Type": 19,
             "Area": 0.1, "Center": "(1.0, 2.0, 0.0)", "IndexInImage": 0},
            {"Name": "Mass", "NumberOfPoints": len(mass), "Point_px": mass, "Type": 15, "Area": 900.0,
             "Center": "(14.0, 11.2, 0.0)", "IndexInImage": 1, "Mean": 4100.5, "Dev": 30.2},
            {"Name": "Mass", "NumberOfPoints": 3, "Point_px": ["(5, 5)", "(25, 6)", "(12, 30)"], "Type": 15,
             "IndexInImage": 2}]
    return plistlib.dumps({"Images": [{"ImageIndex": 0, "NumberOfROIs": 3, "ROIs": rois}]}, sort_keys=True)


def _check_rois(rois: list) -> None:
    for r in rois:
        assert isinstance(r["name"], str)
        assert r["points"].ndim == 2 and r["points"].shape[1] == 2 and np.isfinite(r["points"]).all()


def test_fuzz_inbreast_xml_parser():
    rng = np.random.default_rng(0)
    base = _base_xml()
    _check_rois(parse_inbreast_xml(base))
    outcomes = {"parsed": 0, "error": 0}
    for case in range(300):
        data = mutate(base, rng)
        try:
            rois = parse_inbreast_xml(data, f"case{case}.xml")
        except DataFormatError as e:
            assert f"case{case}.xml" in str(e)
            outcomes["error"] += 1
            continue
        _check_rois(rois)
        outcomes["parsed"] += 1
    assert outcomes["parsed"] > 10 and outcomes["error"] > 100, outcomes


CSV_BASES = {
    "inbreast": (parse_inbreast_csv, "Patient ID;Patient age;Laterality;View;Acquisition date;File Name;ACR;Bi-Rads\n"
                                     "removed;removed;L;CC;201001;20586908;2;4a\n"
                                     "removed;removed;R;MLO;201001;20586960;;5\n"),
    "cbis": (parse_cbis_csv, ",".join(CBIS_CSV_HEADER) + "\n" +
             "P_00001,3,LEFT,CC,1,mass,OVAL,CIRCUMSCRIBED,4,MALIGNANT,4,Mass-Training_P_00001_LEFT_CC/1.2/1.3/"
             "000000.dcm,Mass-Training_P_00001_LEFT_CC_1/1.4/1.5/000000.dcm,\"Mass-Training_P_00001_LEFT_CC_1/"
             "1.4/1.5/000001.dcm\n\"\n"
             "P_00002,2,RIGHT,MLO,2,mass,IRREGULAR,SPICULATED,5,BENIGN,3,a/1.6/1.7/000000.dcm,b/1.8/1.9/"
             "000001.dcm,b/1.8/1.9/000000.dcm\n"),
    "split": (parse_split_csv, "name,split\ncase0,train\ncase1.png,train\ncase2,val\ncase3,test\n"),
}


@pytest.mark.parametrize("kind", sorted(CSV_BASES))
def test_fuzz_csv_parsers(kind):
    parse, base = CSV_BASES[kind]
    assert parse(base)  # the unmutated file parses
    rng = np.random.default_rng({"cbis": 1, "inbreast": 2, "split": 3}[kind])
    outcomes = {"parsed": 0, "error": 0}
    for case in range(220):
        text = mutate(base.encode(), rng).decode("utf-8", errors="replace")
        try:
            rows = parse(text, f"case{case}.csv")
        except DataFormatError as e:
            assert f"case{case}.csv" in str(e)
            outcomes["error"] += 1
            continue
        outcomes["parsed"] += 1
        for row in rows:
            if kind == "split":
                name, split = row
                assert name and split in ("train", "val", "test")
            elif kind == "cbis":
                assert row["abnormality id"].isdigit() and row["image file path"] == row["image file path"].strip()
            else:
                assert row["File Name"].isdigit()
    assert outcomes["parsed"] > 10 and outcomes["error"] > 10, outcomes


def test_fuzz_inbreast_loader_end_to_end(tmp_path):
    """Mutated XML next to a real DICOM: the loader yields valid ROIs or a DataFormatError."""
    root = tmp_path / "inb"
    (root / "AllDICOMs").mkdir(parents=True)
    (root / "AllXML").mkdir()
    img = (4000 + 500 * np.random.default_rng(0).random((80, 100))).astype(np.uint16)
    write_dicom(root / "AllDICOMs" / "10000001_00000000000000aa_MG_R_CC_ANON.dcm", img)
    rng = np.random.default_rng(4)
    base = _base_xml()
    n_ok = 0
    for case in range(40):
        (root / "AllXML" / "10000001.xml").write_bytes(mutate(base, rng))
        try:
            samples = load_inbreast(root, warn=WarningCounter())
        except DataFormatError:
            continue
        n_ok += 1
        for s in samples:
            assert s["image"].shape == (1, 40, 40) and np.isfinite(s["image"]).all()
            assert set(np.unique(s["label"])) <= {0, 1}
    assert n_ok > 0
