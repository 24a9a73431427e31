"""The Lava environment: find or create it, and run the Lava runner in it as a subprocess.

lava-nc 0.10.0 needs Python 3.10 and numpy < 2, so it lives in its own virtual environment
(default ``<repo>/.venv-lava``; override with ``SPIKELAB_LAVA_ENV``) holding lava-nc, numpy and
spikelab itself (editable, without dependencies: the Lava side imports only numpy-only
modules). Python 3.10 is found through ``SPIKELAB_PYTHON310``, pyenv, or ``python3.10`` on PATH.

Command line (used by ``make lava-env``)::

    python -m spikelab.hardware.lava_env --create    # build it if missing, then check it
    python -m spikelab.hardware.lava_env             # check only
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spikelab.errors import SpikelabError
from spikelab.hardware import artifact
from spikelab.hardware.network import Network

REPO = Path(__file__).resolve().parents[1]
LAVA_REQUIREMENTS = ("lava-nc==0.10.0", "numpy<2")


class LavaUnavailable(SpikelabError):
    """The Lava environment is missing and cannot be created or used (the message says why)."""


def env_dir() -> Path:
    """Folder of the Lava virtual environment."""
    return Path(os.environ.get("SPIKELAB_LAVA_ENV", REPO / ".venv-lava"))


def env_python() -> Path:
    """The Lava environment's Python executable (may not exist yet)."""
    d = env_dir()
    return d / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _version(python: str) -> str | None:
    try:
        out = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def find_python310() -> str | None:
    """Path of a Python 3.10 interpreter, or None: $SPIKELAB_PYTHON310, pyenv, python3.10 on PATH."""
    candidates = []
    if os.environ.get("SPIKELAB_PYTHON310"):
        candidates.append(os.environ["SPIKELAB_PYTHON310"])
    pyenv = shutil.which("pyenv")
    if pyenv:
        try:
            versions = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True, timeout=60)
            for v in sorted((v.strip() for v in versions.stdout.split()), reverse=True):
                if v.startswith("3.10"):
                    root = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=60).stdout.strip()
                    candidates.append(str(Path(root) / "versions" / v / "bin" / "python3.10"))
        except (OSError, subprocess.TimeoutExpired):
            pass
    if shutil.which("python3.10"):
        candidates.append(shutil.which("python3.10"))
    for c in candidates:
        if Path(c).exists() and _version(c) == "3.10":
            return c
    return None


def check_env() -> str | None:
    """None if the Lava environment works, else the reason it does not."""
    py = env_python()
    if not py.exists():
        return f"no Lava environment at {env_dir()} (create it with `make lava-env`)"
    probe = subprocess.run(
        [str(py), "-c", "import lava.magma.core.run_configs, numpy, spikelab.hardware.lava_runner"],
        capture_output=True, text=True, timeout=300,
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["unknown error"])[-1]
        return f"the Lava environment at {env_dir()} is broken ({last}); remove it and run `make lava-env`"
    return None


def create_env(python310: str | None = None) -> Path:
    """Create (or repair) the Lava environment; :class:`LavaUnavailable` with the reason on failure."""
    python310 = python310 or find_python310()
    if python310 is None:
        raise LavaUnavailable(
            "cannot create the Lava environment: no Python 3.10 found (lava-nc 0.10 runs on Python 3.10 "
            "only). Install it (e.g. `pyenv install 3.10.13`) or set SPIKELAB_PYTHON310=/path/to/python3.10"
        )
    if not (REPO / "pyproject.toml").is_file():
        raise LavaUnavailable(f"cannot install spikelab into the Lava environment: no source checkout at {REPO}")
    d = env_dir()
    steps = [
        [python310, "-m", "venv", str(d)],
        [str(env_python()), "-m", "pip", "install", "--disable-pip-version-check", "-q", *LAVA_REQUIREMENTS],
        [str(env_python()), "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-deps", "-e", str(REPO)],
    ]
    for cmd in steps:
        if cmd[1:3] == ["-m", "venv"] and env_python().exists():
            continue
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
            raise LavaUnavailable(f"creating the Lava environment failed at `{' '.join(cmd)}`:\n{tail}")
    problem = check_env()
    if problem:
        raise LavaUnavailable(problem)
    return d


def require_env(create: bool = False) -> Path:
    """The Lava environment's Python, creating the environment first if ``create``; else LavaUnavailable."""
    problem = check_env()
    if problem and create:
        create_env()
        problem = check_env()
    if problem:
        raise LavaUnavailable(problem)
    return env_python()


@dataclass
class LavaResult:
    """Spikes per stage aligned to the input steps (T, B, *shape), optional raw Lava-time spikes, run info."""

    spikes: list[np.ndarray]
    raw: list[np.ndarray] | None
    info: dict


def run_lava(net: Network | str | os.PathLike, spikes: np.ndarray, mode: str = "fixed", *,
             raw: bool = False, create: bool = False, timeout: float = 3600) -> LavaResult:
    """Run a network (or an artifact file) in Lava, in the Lava environment, and return its spikes."""
    python = require_env(create=create)
    with tempfile.TemporaryDirectory(prefix="spikelab-lava-") as tmp:
        tmp = Path(tmp)
        art = Path(net) if not isinstance(net, Network) else artifact.save(net, tmp / "network.npz")
        np.savez(tmp / "inputs.npz", spikes=np.asarray(spikes).astype(np.uint8))
        cmd = [str(python), "-m", "spikelab.hardware.lava_runner", str(art), str(tmp / "inputs.npz"),
               str(tmp / "out.npz"), "--mode", mode] + (["--raw"] if raw else [])
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise LavaUnavailable(f"the Lava run did not finish within {timeout:g} s") from exc
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
            raise LavaUnavailable(f"the Lava run failed (exit {proc.returncode}):\n{tail}")
        with np.load(tmp / "out.npz", allow_pickle=False) as data:
            n = len([k for k in data.files if k.startswith("stage")])
            spikes_out = [data[f"stage{k}"] for k in range(n)]
            raws = [data[f"raw{k}"] for k in range(n)] if raw else None
            info = json.loads(data["info"].tobytes().decode())
    return LavaResult(spikes_out, raws, info)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spikelab.hardware.lava_env",
                                     description="check (and optionally create) the Lava environment")
    parser.add_argument("--create", action="store_true", help="create the environment if it is missing or broken")
    args = parser.parse_args(argv)
    try:
        require_env(create=args.create)
    except LavaUnavailable as exc:
        print(f"spikelab lava-env: error: {exc}", file=sys.stderr)
        return 1
    print(f"spikelab lava-env: ready at {env_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
