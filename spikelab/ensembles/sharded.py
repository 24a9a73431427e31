"""Sharded ensemble training on Ray: each shard of modules is one batched program on one worker.

The modules are split into ``shards`` contiguous groups; every group is trained and recorded
by :func:`spikelab.ensembles.ensemble.train_modules` in its own Ray task (one GPU each when
``gpus_per_shard`` is set), and the shards are merged for hyperactive-neuron removal and
querying. Because a module's randomness depends only on (seed, module index), the merged
ensemble is identical to single-process training (``tests/test_sweep_ray.py`` asserts it).
"""

from __future__ import annotations

import numpy as np

from spikelab.distributed import check_resources, connect, limit_threads
from spikelab.ensembles.ensemble import EnsembleConfig, ModuleStates, RegionalEnsemble, merge, partition, train_modules


def _train_shard(config: dict, reference: np.ndarray, modules: list[int], threads: int) -> ModuleStates:
    limit_threads(threads)
    return train_modules(config, reference, modules, progress=False)


def shard_indices(n_modules: int, shards: int) -> list[list[int]]:
    """Split module indices 0..n-1 into at most ``shards`` contiguous, non-empty groups."""
    if shards < 1:
        raise ValueError(f"shards must be a positive integer, got {shards}")
    return [part.tolist() for part in np.array_split(np.arange(n_modules), min(shards, n_modules))]


def train_sharded(
    config: EnsembleConfig,
    reference: np.ndarray,
    shards: int,
    address: str | None = None,
    cpus_per_shard: float = 1,
    gpus_per_shard: float = 0,
) -> RegionalEnsemble:
    """Train all modules in ``shards`` parallel Ray tasks and merge them into one ensemble."""
    n_modules = len(partition(reference.shape[-3], config.places_per_module, config.regions, config.seed))
    groups = shard_indices(n_modules, shards)
    connect(address)
    check_resources(cpus_per_shard, gpus_per_shard)
    import ray

    task = ray.remote(num_cpus=cpus_per_shard, num_gpus=gpus_per_shard, max_retries=0)(_train_shard)
    ref = ray.put(reference)
    futures = [task.remote(config.to_dict(), ref, g, int(max(1, cpus_per_shard))) for g in groups]
    return merge(ray.get(futures))
