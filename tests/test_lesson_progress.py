"""Training progress: a bar per run on a terminal, one line per run otherwise, nothing when quiet;
always on stderr, so a lesson's numbered findings on stdout stay unchanged."""
from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import select
import struct
import sys
import termios
import time
from pathlib import Path

import pytest

from tinyseg.experiments import fast_subset
from tinyseg.train import TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_in_pty(argv: list[str], env: dict[str, str], timeout: float,
               size: tuple[int, int] = (40, 120)) -> tuple[int, list[tuple[float, str]]]:
    """Run `argv` with stdin, stdout and stderr on a pseudo-terminal of `size` (rows, columns).

    Returns the exit status and every chunk of output with its time in seconds since the start.
    """
    t0 = time.monotonic()
    pid, fd = pty.fork()
    if pid == 0:  # the child: its standard streams are the terminal
        os.chdir(ROOT)
        os.execve(argv[0], argv, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))
    chunks: list[tuple[float, str]] = []
    try:
        while time.monotonic() - t0 < timeout:
            if not select.select([fd], [], [], 0.5)[0]:
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append((time.monotonic() - t0, data.decode(errors="replace")))
        else:
            os.kill(pid, 9)
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), chunks


def test_lesson_04_fast_shows_every_training_run_on_a_terminal(tmp_path: Path) -> None:
    env = dict(os.environ, MPLBACKEND="Agg", TINYSEG_CACHE=str(tmp_path / "cache"), TERM="xterm")
    code, chunks = run_in_pty([sys.executable, "lessons/04_adversarial.py", "--fast", "--out", str(tmp_path / "out")],
                              env, timeout=300)
    text = ANSI.sub("", "".join(c for _, c in chunks))
    assert code == 0, text[-3000:]
    # One bar per run (pre-training, then both fine-tunings), each finished: "name: 100%|...| 1/1 [...]".
    for name in ("fcn pre-training", "fcn_crf", "adv_fcn_crf"):
        assert re.search(rf"(?:^|[\r\n]){re.escape(name)}: 100%\|[^\r\n]*\| 1/1 \[[^\]]*loss=", text), \
            f"no finished progress bar for {name!r} in:\n{text[-3000:]}"
    assert all(f"[{k}] " in text for k in range(1, 6)), text[-3000:]


def test_a_terminal_without_a_size_still_gets_a_bar() -> None:
    # tqdm draws nothing on a 0 × 0 terminal (a bare pseudo-terminal, some containers).
    script = ("from tinyseg.progress import Progress\n"
              "p = Progress('demo', 2, quiet=False)\n"
              "p.start(0)\n"
              "p.epoch({'train_loss': 0.5, 'val_dice': 0.75})\n"
              "p.close()\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code, chunks = run_in_pty([sys.executable, "-c", script], env, timeout=60, size=(0, 0))
    text = ANSI.sub("", "".join(c for _, c in chunks))
    assert code == 0, text
    assert re.search(r"demo:  50%\|.*\| 1/2 \[.*loss=0\.5000, val_dice=0\.7500\]", text), text


@pytest.fixture(scope="module")
def small_ds(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    mp = pytest.MonkeyPatch()
    mp.setenv("TINYSEG_CACHE", str(tmp_path_factory.mktemp("cache")))
    try:
        from tinyseg.data import load_dataset

        return fast_subset(load_dataset("phantom"), 12, 4)
    finally:
        mp.undo()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _cfg(**kw) -> TrainConfig:  # noqa: ANN003
    return TrainConfig(**{"variant": "fcn", "epochs": 2, "device": "cpu", **kw})


def test_fit_on_a_terminal_draws_a_named_bar_with_loss_and_validation_dice(
        tmp_path: Path, small_ds, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:  # noqa: ANN001
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    fit(_cfg(), tmp_path / "r", dataset=small_ds, desc="my run")
    bar = ANSI.sub("", term.getvalue()).replace("\r", "\n").splitlines()
    assert any(re.match(r"my run: 100%\|.*\| 2/2 \[.*loss=[0-9.]+, val_dice=[0-9.]+\]", line) for line in bar), bar
    assert capsys.readouterr().out == ""


def test_fit_without_a_terminal_prints_one_line_per_run(tmp_path: Path, small_ds,  # noqa: ANN001
                                                          capsys: pytest.CaptureFixture) -> None:
    fit(_cfg(), tmp_path / "r", dataset=small_ds)
    out, err = capsys.readouterr()
    assert out == ""
    assert re.fullmatch(r"fcn: 2 epochs in [0-9.]+ s, loss [0-9.]+, val dice [0-9.]+\n", err), err


def test_quiet_fit_is_silent(tmp_path: Path, small_ds, monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
                             capsys: pytest.CaptureFixture) -> None:
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    fit(_cfg(epochs=1), tmp_path / "r", dataset=small_ds, quiet=True)
    assert term.getvalue() == "" and capsys.readouterr() == ("", "")
