"""Ray plumbing shared by sweeps and sharded ensembles: connect, check resources.

Ray starts a local cluster when no address is given (all cores of this machine, or
``num_cpus``), or connects to a running cluster at ``address``. Problems are raised as
:class:`DistributedError` before any task is submitted.
"""

from __future__ import annotations

import socket

from spikelab.errors import SpikelabError


class DistributedError(SpikelabError):
    """Ray is unavailable, the cluster is unreachable, or no node can run a task as declared."""


def connect(address: str | None = None, num_cpus: int | None = None) -> None:
    """Start a local Ray cluster (``address`` None) or connect to one; reuse a live connection."""
    try:
        import ray
    except ImportError as exc:
        raise DistributedError("Ray is not installed: pip install 'spikelab[distributed]'") from exc
    if ray.is_initialized():
        return
    if address and address != "auto":
        check_reachable(address)
    kwargs = dict(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=num_cpus, **kwargs)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        raise DistributedError(f"cannot reach the Ray cluster at {address!r}: {exc}") from exc


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """``DistributedError`` unless a TCP connection to ``[ray://]host:port`` opens within ``timeout`` s.

    Ray itself keeps retrying an unreachable address for minutes; this answers in seconds.
    """
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise DistributedError(f"Ray address must look like host:port or ray://host:port, got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise DistributedError(f"cannot reach the Ray cluster at {address}: {exc}") from None


def check_resources(cpus: float, gpus: float) -> None:
    """``DistributedError`` unless some alive node can hold a task needing ``cpus`` and ``gpus``."""
    import ray

    if cpus <= 0 or gpus < 0:
        raise DistributedError(f"a task needs CPUs > 0 and GPUs >= 0; got {cpus} CPUs, {gpus} GPUs")
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if not any(r.get("CPU", 0) >= cpus and r.get("GPU", 0) >= gpus for r in nodes):
        have = [(r.get("CPU", 0), r.get("GPU", 0)) for r in nodes]
        raise DistributedError(f"no node can run a task needing {cpus} CPUs and {gpus} GPUs; nodes have (CPU, GPU) = {have}")


def limit_threads(n: int) -> None:
    """Use ``n`` threads for torch and numba inside a worker that declared ``n`` CPUs."""
    import numba
    import torch

    n = max(1, int(n))
    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
