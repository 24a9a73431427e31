"""GPM: gradient projection memory (Saha, Garg & Roy, ICLR 2021), the method HLOP is compared with.

After each task, the presynaptic activity of every protected layer on a few hundred training
samples forms a representation matrix; its SVD gives the directions to protect, as many as
needed for the whole basis to explain ``threshold`` of the activity's energy (directions
already in the basis are removed from the activity first). Later weight gradients are
projected orthogonally to the basis, exactly as in HLOP; HLOP replaces the SVD by Hebbian
learning during training.
"""

from __future__ import annotations

import torch
from torch import nn

from spikelab.continual.models import synaptic_layers
from spikelab.continual.strategy import Plugin
from spikelab.continual.subspace import (
    collect_activity,
    energy_rank,
    freeze_non_weights,
    per_layer,
    project_gradient,
    project_out,
)


def extend_basis(basis: torch.Tensor, activity: torch.Tensor, threshold: float) -> torch.Tensor:
    """GPM's basis update: ``basis`` (k, n) plus the new principal directions of ``activity`` (N, n).

    The part of ``activity`` outside span(basis) is decomposed by SVD; its leading directions
    are appended until ``(energy in span(basis) + new energy) / total energy >= threshold``.
    """
    activity = activity.to(basis.dtype)
    total = float(activity.pow(2).sum())
    residual = project_out(activity, basis)
    captured = total - float(residual.pow(2).sum())
    _, s, vh = torch.linalg.svd(residual, full_matrices=False)
    r = energy_rank(s.pow(2), captured, total, threshold)
    r = min(r, activity.shape[1] - basis.shape[0])
    return torch.cat([basis, vh[:r]]) if r > 0 else basis


class GPM(Plugin):
    """The GPM method as a strategy plugin.

    Args:
        model: the network (protected layers from :func:`synaptic_layers`).
        threshold: energy threshold per layer (or one value), e.g. 0.95-0.99.
        n_samples: training samples of each task used for the representation matrices.
        signal: "rate" or "spikes" (see :func:`spikelab.continual.subspace.activity_rows`).
        max_rows: cap on activity rows per layer (conv patches), None for all.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        threshold: float | list[float] = 0.97,
        n_samples: int = 300,
        signal: str = "rate",
        max_rows: int | None = None,
    ) -> None:
        self.model = model
        self.layers = synaptic_layers(model)
        self.threshold = per_layer(threshold, len(self.layers), "gpm threshold")
        for t in self.threshold:
            if not 0 < t <= 1:
                raise ValueError(f"gpm threshold {t} must be in (0, 1]")
        self.n_samples, self.signal, self.max_rows = n_samples, signal, max_rows
        self.bases = [torch.zeros(0, layer.in_features) for layer in self.layers]

    def before_training_exp(self, strategy) -> None:
        if strategy.training_exp_counter > 0:
            freeze_non_weights(self.model)

    before_training_epoch = before_training_exp

    def after_backward(self, strategy) -> None:
        for layer, basis in zip(self.layers, self.bases):
            project_gradient(layer.synapse, basis)

    @torch.no_grad()
    def after_training_exp(self, strategy) -> None:
        activity = collect_activity(strategy, strategy.experience, self.layers, self.n_samples, self.signal, self.max_rows)
        self.bases = [extend_basis(b, x, thr) for b, x, thr in zip(self.bases, activity, self.threshold)]

    def block_sizes(self) -> list[int]:
        """Current number of protected directions per layer."""
        return [b.shape[0] for b in self.bases]

    def state_dict(self) -> dict:
        return {"bases": [b.clone() for b in self.bases]}

    def load_state_dict(self, state: dict) -> None:
        self.bases = [b.clone() for b in state["bases"]]
