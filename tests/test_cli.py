"""The ``spikelab`` command line: help, info, demo, and one-line errors."""

import json
import subprocess
import sys

from spikelab.cli import COMMANDS, main


def _run(*args):
    return subprocess.run([sys.executable, "-m", "spikelab.cli", *args], capture_output=True, text=True, timeout=600)


def test_help_lists_every_command():
    res = _run("--help")
    assert res.returncode == 0
    for name in COMMANDS:
        assert name in res.stdout


def test_info_reports_versions_and_threads():
    res = _run("info", "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["torch"].startswith("2.13") and info["norse"] == "1.1.0"
    assert info["torch_threads"] >= 1 and info["lif_kernel"] in ("numba (cpu)", "triton (cuda)")


def test_user_errors_are_one_line_without_traceback(capsys):
    code = main(["demo", "--seed", "-1"])
    err = capsys.readouterr().err
    assert code == 2 and "error:" in err and "Traceback" not in err
