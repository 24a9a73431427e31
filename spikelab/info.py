"""``spikelab info``: versions, compute devices and threads, for bug reports and benchmarks."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform


def collect() -> dict[str, object]:
    """Versions of spikelab and its main dependencies, devices and thread counts."""
    import numba
    import torch

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    info: dict[str, object] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for dist in ("spikelab", "torch", "norse", "numpy", "numba", "nir", "nirtorch", "triton", "brian2", "ray"):
        info[dist] = version(dist)
    info["cuda_available"] = torch.cuda.is_available()
    info["devices"] = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available()
        else ["cpu"]
    )
    info["cpu_count"] = os.cpu_count()
    info["torch_threads"] = torch.get_num_threads()
    info["numba_threads"] = numba.config.NUMBA_NUM_THREADS
    info["lif_kernel"] = "triton (cuda)" if torch.cuda.is_available() else "numba (cpu)"
    return info


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print as JSON")


def run(args: argparse.Namespace) -> int:
    info = collect()
    if args.json:
        import json

        print(json.dumps(info, indent=2))
    else:
        width = max(map(len, info))
        for key, value in info.items():
            print(f"{key:<{width}}  {value}")
    return 0
