"""HLOP: Hebbian learning based orthogonal projection (Xiao et al., ICLR 2024).

Every protected layer (see :func:`spikelab.continual.models.synaptic_layers`) gets a
:class:`~spikelab.plasticity.hebbian.HebbianSubspace` of lateral subspace neurons fed with the
layer's presynaptic activity (firing rates in rate-based training, spikes at every step with
BPTT). Per task:

1. before training: append new learning rows to every subspace (orthonormal within the block);
   from the second task on, freeze biases, neuron parameters and norm layers;
2. during training: every training forward pass runs the Hebbian rule on the learning rows
   (5 iterations on the minibatch by default), and every weight gradient is projected
   orthogonally to the frozen rows, ``dW <- dW (I - H_old^T H_old)`` (conv: on the reshaped
   (C_out, C_in k k) gradient). The error sent to lower layers is not projected;
3. after training: optionally shrink the new block by explained variance, then freeze it.

New-block sizes are either hand-set per task and layer (the reference code's lists) or chosen
by energy: ``max_new`` rows learn during the task, then the block is rotated to its principal
directions on a sample of the task's activity and cut to the fewest directions that bring the
explained energy of the whole subspace to ``energy_threshold`` (GPM's criterion).
"""

from __future__ import annotations

import torch
from torch import nn

from spikelab.continual.models import synaptic_layers
from spikelab.continual.strategy import Plugin
from spikelab.continual.subspace import (
    ActivityHooks,
    activity_rows,
    collect_activity,
    energy_rank,
    freeze_non_weights,
    per_layer,
    project_gradient,
)
from spikelab.plasticity.hebbian import HebbianSubspace


class HLOP(Plugin):
    """The HLOP method as a strategy plugin.

    Args:
        model: the network (its protected layers are found with :func:`synaptic_layers`).
        sizes: hand-set new rows per task and layer, ``sizes[t][l]``; None selects energy sizing.
        energy_threshold: per layer (or one value), fraction of activity energy to explain.
        max_new: per layer (or one value), learning rows per task before energy sizing
            (None: 100, or the layer's input dimension if smaller).
        lr: Hebbian learning rate per layer (or one value).
        iterations, momentum, clamp: Hebbian rule settings (see :class:`HebbianSubspace`).
        signal: "rate" or "spikes": what the Hebbian neurons see.
        max_rows: cap on activity rows per Hebbian update (random subset; None: all).
        energy_samples: training samples used to size a block by energy.
        generator: randomness of initial rows and row subsets.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        sizes: list[list[int]] | None = None,
        energy_threshold: float | list[float] = 0.99,
        max_new: int | list[int] | None = None,
        lr: float | list[float] = 0.01,
        iterations: int = 5,
        momentum: float = 0.9,
        clamp: float | None = 10.0,
        signal: str = "rate",
        max_rows: int | None = None,
        energy_samples: int = 1000,
        generator: torch.Generator | None = None,
    ) -> None:
        self.model = model
        self.layers = synaptic_layers(model)
        n = len(self.layers)
        lrs = per_layer(lr, n, "hlop lr")
        self.subspaces = nn.ModuleList(
            HebbianSubspace(layer.in_features, lr_l, iterations, momentum, clamp) for layer, lr_l in zip(self.layers, lrs)
        )
        self.sizes = None if sizes is None else [per_layer(s, n, f"hlop sizes[{t}]") for t, s in enumerate(sizes)]
        self.energy_threshold = per_layer(energy_threshold, n, "hlop energy_threshold")
        if max_new is None:
            max_new = [min(100, layer.in_features) for layer in self.layers]
        self.max_new = per_layer(max_new, n, "hlop max_new")
        if self.sizes is not None:
            for l, layer in enumerate(self.layers):
                total = sum(int(s[l]) for s in self.sizes)
                if total > layer.in_features:
                    raise ValueError(
                        f"hlop sizes add up to {total} subspace neurons for layer {layer.name}, more than its "
                        f"input dimension {layer.in_features}"
                    )
        for l, layer in enumerate(self.layers if self.sizes is None else []):
            if not 0 < self.max_new[l] <= layer.in_features:
                raise ValueError(f"hlop max_new={self.max_new[l]} for layer {layer.name} must be in 1..{layer.in_features}")
        self.signal, self.max_rows, self.energy_samples = signal, max_rows, energy_samples
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self._index = {id(layer.layer): i for i, layer in enumerate(self.layers)}
        self._hooks: ActivityHooks | None = None
        self._strategy = None

    def check_tasks(self, n_tasks: int) -> None:
        """``ValueError`` if hand-set sizes do not list exactly one entry per task."""
        if self.sizes is not None and len(self.sizes) != n_tasks:
            raise ValueError(f"hlop sizes list {len(self.sizes)} tasks but the scenario has {n_tasks}")

    def _new_rows(self, t: int) -> list[int]:
        if self.sizes is not None:
            if t >= len(self.sizes):
                raise ValueError(f"hlop sizes cover {len(self.sizes)} tasks; task {t} has no entry")
            return [int(k) for k in self.sizes[t]]
        return [min(m, s.in_features - s.n_rows) for m, s in zip(self.max_new, self.subspaces)]

    def _hebbian(self, layer, x: torch.Tensor) -> None:
        s = self._strategy
        if s is None or not (s.is_training and s.model.training and torch.is_grad_enabled()):
            return
        sub = self.subspaces[self._index[id(layer.layer)]]
        sub.update(activity_rows(x, layer.synapse, self.signal, self.max_rows, self.generator))

    def before_training_exp(self, strategy) -> None:
        t = strategy.training_exp_counter
        if t > 0:
            freeze_non_weights(self.model)
        for sub, k in zip(self.subspaces, self._new_rows(t)):
            sub.add_rows(k, self.generator)
        self._strategy = strategy
        self._hooks = ActivityHooks(self.layers, self._hebbian)

    def before_training_epoch(self, strategy) -> None:
        if strategy.training_exp_counter > 0:
            freeze_non_weights(self.model)  # model.train() puts norm layers back in training mode

    def after_backward(self, strategy) -> None:
        for layer, sub in zip(self.layers, self.subspaces):
            project_gradient(layer.synapse, sub.frozen)

    def after_training_exp(self, strategy) -> None:
        if self._hooks is not None:
            self._hooks.remove()
            self._hooks = None
        self._strategy = None
        if self.sizes is None:
            self._size_by_energy(strategy)
        for sub in self.subspaces:
            sub.freeze()

    @torch.no_grad()
    def _size_by_energy(self, strategy) -> None:
        activity = collect_activity(
            strategy, strategy.experience, self.layers, self.energy_samples, self.signal, self.max_rows
        )
        for x, sub, threshold in zip(activity, self.subspaces, self.energy_threshold):
            new = sub.weight[sub.n_frozen :]
            if new.shape[0] == 0:
                continue
            x = x.to(new.dtype)
            total = float((x * x).sum())
            captured = float((x @ sub.frozen.T).pow(2).sum())
            y = x @ new.T  # responses of the learning block
            energies, vectors = torch.linalg.eigh(y.T @ y)
            energies, vectors = energies.flip(0).clamp_min(0), vectors.flip(1)
            sub.weight[sub.n_frozen :] = vectors.T @ new  # principal directions within the block
            sub.keep_rows(sub.n_frozen + energy_rank(energies, captured, total, threshold))

    def block_sizes(self) -> list[int]:
        """Current number of subspace neurons per protected layer."""
        return [s.n_rows for s in self.subspaces]

    def state_dict(self) -> dict:
        return {"subspaces": self.subspaces.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.subspaces.load_state_dict(state["subspaces"])
        self.generator.set_state(state["generator"])
