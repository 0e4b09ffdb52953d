"""The CLI teaches: every subcommand has --help with examples; errors exit 1 with a message."""

from __future__ import annotations

import subprocess
import sys

import pytest

from seamroto import cli

SUBCOMMANDS = ["inspect", "synth", "train", "track", "refit", "repair", "export", "models", "demo", "batch", "farm-job"]


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_help_has_examples(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.run([name, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert f"seamroto {name}" in out


def test_no_command_prints_help_and_usage_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run([]) == cli.EXIT_USAGE
    assert "seamroto track" in capsys.readouterr().out


def test_missing_file_is_one_clear_error(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    missing = tmp_path / "nope.nk"
    assert cli.run(["inspect", str(missing)]) == cli.EXIT_ERROR


def test_help_as_a_subprocess() -> None:
    out = subprocess.run([sys.executable, "-m", "seamroto", "--help"], capture_output=True, text=True, check=True)
    assert "Exit codes" in out.stdout
