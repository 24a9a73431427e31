"""Regional ensembles of compact spiking modules for place recognition (Hussaini et al., ICRA 2023).

* :mod:`~spikelab.ensembles.network`: the Diehl & Cook module, batched over modules
  (:class:`DiehlCookParameters`, :class:`DiehlCookBatch`), on the numba kernel in
  :mod:`~spikelab.ensembles.kernel`.
* :mod:`~spikelab.ensembles.ensemble`: regions, training (any subset of modules: sharding),
  merging, querying, hyperactive-neuron removal, save/load (:func:`train_modules`,
  :func:`merge`, :class:`RegionalEnsemble`).
* :mod:`~spikelab.ensembles.assignment`: neuron-to-place assignment and place scores.
* :mod:`~spikelab.ensembles.sad`: the sum-of-absolute-differences baseline.
* :mod:`~spikelab.ensembles.brian2_reference`: the reference network in Brian2 (optional).
"""

from spikelab.ensembles.ensemble import EnsembleConfig, ModuleStates, RegionalEnsemble, merge, partition, train_modules
from spikelab.ensembles.network import DiehlCookBatch, DiehlCookParameters
from spikelab.ensembles.sad import sad_scores

__all__ = [
    "EnsembleConfig", "ModuleStates", "RegionalEnsemble", "merge", "partition", "train_modules",
    "DiehlCookBatch", "DiehlCookParameters", "sad_scores",
]
