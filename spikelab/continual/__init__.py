"""Continual learning for spiking networks: HLOP and the baselines it is compared with.

* :class:`Strategy` and :class:`Plugin` (:mod:`.strategy`): an Avalanche-style training loop
  whose methods are plugins; ``"bptt"`` or ``"rate"`` (DSR-style) training.
* :class:`HLOP` (:mod:`.hlop`): Hebbian learning based orthogonal projection.
* Baselines: fine-tuning (no plugin), :class:`EWC`, :class:`Replay`, :class:`GPM`, and joint
  (multitask) training by passing all experiences to ``Strategy.train`` at once.
* :func:`build_mlp`, :class:`ContinualSNN` (:mod:`.models`): spiking MLPs with shared or per-task heads.

The runner with YAML configs, results folders and resume is :mod:`spikelab.tasks.continual`.
"""

from spikelab.continual.ewc import EWC
from spikelab.continual.gpm import GPM
from spikelab.continual.hlop import HLOP
from spikelab.continual.models import ContinualSNN, build_mlp, synaptic_layers
from spikelab.continual.replay import Replay
from spikelab.continual.strategy import CurrentEncoder, DirectEncoder, Plugin, Strategy

__all__ = [
    "Strategy", "Plugin", "DirectEncoder", "CurrentEncoder", "HLOP", "EWC", "Replay", "GPM",
    "ContinualSNN", "build_mlp", "synaptic_layers",
]
