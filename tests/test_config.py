"""Options are checked where they enter: one table of allowed values, an error naming the bad
value and the allowed ones, and nothing read or written before the options are valid."""
from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

import pytest

import tinyseg as ts
from tinyseg.cli import build_parser
from tinyseg.config import CHOICES, TrainConfig
from tinyseg.data import load_dataset
from tinyseg.errors import OptionError, UserError
from tinyseg.experiments import run_table2
from tinyseg.models import VARIANTS

# Every string field of TrainConfig that takes one of a fixed set of values.
STRING_OPTIONS = ["variant", "crf_graph", "adv_kernel", "fusion", "l2_scope", "prior_init", "device", "dtype", "boxes"]


def test_every_fixed_string_option_of_train_config_is_in_the_table() -> None:
    strings = {f.name for f in fields(TrainConfig) if f.type == "str"} - {"data"}
    assert strings == set(STRING_OPTIONS)
    assert set(STRING_OPTIONS) <= set(CHOICES)
    for name in STRING_OPTIONS:
        assert getattr(TrainConfig(), name) in CHOICES[name], f"the default of {name} is not in the table"


def test_variant_names_in_the_table_are_the_models() -> None:
    assert CHOICES["variant"] == tuple(VARIANTS)


@pytest.mark.parametrize("name", STRING_OPTIONS)
def test_bad_option_names_the_value_and_the_allowed_ones(name: str) -> None:
    with pytest.raises(OptionError) as e:
        TrainConfig(**{name: "bogus"}).validate()
    message = str(e.value)
    assert f"{name}='bogus'" in message
    assert all(allowed in message for allowed in CHOICES[name])
    assert isinstance(e.value, UserError) and isinstance(e.value, ValueError)


@pytest.mark.parametrize("name", STRING_OPTIONS)
def test_bad_option_writes_nothing(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_data(*args: object, **kwargs: object) -> None:
        raise AssertionError("data was loaded before the options were checked")

    monkeypatch.setattr("tinyseg.data.load_dataset", no_data)
    config = TrainConfig(**{"variant": "adv_fcn_crf", "epochs": 1, "device": "cpu", name: "bogus"})
    with pytest.raises(OptionError, match=f"{name}='bogus'"):
        ts.fit(config, tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("field,value", [("eps", -0.1), ("eps", "big"), ("epochs", 0), ("batch_size", 0),
                                         ("n_iter", 0), ("n_iter_eval", 0), ("lr", 0.0), ("l2", -1.0),
                                         ("val_frac", 1.5)])
def test_bad_numbers_name_the_option(field: str, value: object) -> None:
    with pytest.raises(OptionError, match=field):
        TrainConfig(**{field: value}).validate()


def test_table2_checks_every_run_before_writing(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="crf_graph='bogus'"):
        run_table2("phantom", 1, 1, ["fcn"], tmp_path / "t", crf_graph="bogus")
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("name", ["clahe_hist_range", "label_resize", "boxes"])
def test_data_options_are_checked_before_anything_is_built(name: str, tmp_cache: Path) -> None:  # noqa: ARG001
    with pytest.raises(OptionError, match=f"{name}='bogus'"):
        load_dataset("phantom", **{name: "bogus"})


def _choices_of(parser: argparse.ArgumentParser, command: str) -> dict[str, tuple[str, ...]]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return {a.dest: tuple(a.choices) for a in sub._actions if a.choices is not None}


def test_cli_choices_come_from_the_table() -> None:
    parser = build_parser()
    train = _choices_of(parser, "train")
    assert set(train) == set(STRING_OPTIONS) - {"variant"}  # --variant is checked by validate()
    for name, choices in train.items():
        assert choices == CHOICES[name], name
    for command in ("evaluate", "segment", "table2"):
        for name, choices in _choices_of(parser, command).items():
            assert choices == CHOICES[name], (command, name)
