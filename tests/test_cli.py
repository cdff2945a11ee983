"""The `tinyseg` command: a user error is one line and exit status 2; a bug keeps its traceback."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tinyseg.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_user_error_is_one_line_with_exit_status_2(tmp_path: Path) -> None:
    result = _run(f"import sys; from tinyseg.cli import main; "
                  f"sys.exit(main(['phantom', '--preset', 'nosuch', '--out', {str(tmp_path / 'x')!r}]))")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("tinyseg phantom: error: ") and "nosuch" in result.stderr
    assert "Traceback" not in result.stderr


def test_internal_error_keeps_its_traceback(tmp_path: Path) -> None:
    # A bug inside a command (here a KeyError planted in `phantom`) must not be dressed up as a
    # one-line user error: the traceback is what a bug report needs.
    result = _run("import sys, tinyseg.commands.phantom as cmd\n"
                  "def broken(args):\n"
                  "    return {}['missing key']\n"
                  "cmd.run = broken\n"
                  "from tinyseg.cli import main\n"
                  f"sys.exit(main(['phantom', '--out', {str(tmp_path / 'x')!r}]))\n")
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "KeyError: 'missing key'" in result.stderr
    assert "tinyseg phantom: error" not in result.stderr


@pytest.mark.parametrize("error", [TypeError("bug"), KeyError("bug"), RuntimeError("bug"), ValueError("bug")])
def test_only_user_errors_are_caught(error: Exception, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import tinyseg.commands.phantom as cmd

    def broken(args: object) -> int:
        raise error

    monkeypatch.setattr(cmd, "run", broken)
    with pytest.raises(type(error)):
        main(["phantom", "--out", str(tmp_path / "x")])


def test_no_command_prints_help(capsys: pytest.CaptureFixture) -> None:
    assert main([]) == 0
    assert "train" in capsys.readouterr().out
