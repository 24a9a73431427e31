"""Shared pieces of the subspace methods (HLOP, GPM): presynaptic activity, projection, sizing.

* :func:`activity_rows`: turn a layer's input (T, B, ...) into the rows the subspace is
  learned from: the firing rate per sample (``signal="rate"``) or the spikes at every time
  step (``"spikes"``); for convolutions every unfolded input patch (C_in * k * k) is a row.
* :func:`project_gradient`: ``dW <- dW (I - B^T B)`` for a basis ``B`` (k, n) with orthonormal
  rows. For a convolution the weight gradient is reshaped to (C_out, C_in * k * k) first; this
  equals projecting every input patch and is much cheaper.
* :func:`energy_rank`: GPM's explained-variance criterion for how many new directions to keep.
* :class:`ActivityHooks`: forward pre-hooks that hand each synaptic layer's input to a callback.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spikelab.continual.models import SynapticLayer

SIGNALS = ("rate", "spikes")


def per_layer(value, n_layers: int, what: str) -> list:
    """``value`` as one entry per protected layer (a scalar is repeated); ``ValueError`` on a length mismatch."""
    values = list(value) if isinstance(value, (list, tuple)) else [value] * n_layers
    if len(values) != n_layers:
        raise ValueError(f"{what} has {len(values)} entries but the model has {n_layers} protected layers")
    return values


def activity_rows(
    x: torch.Tensor,
    synapse: nn.Linear | nn.Conv2d,
    signal: str = "rate",
    max_rows: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Presynaptic activity of a layer as rows (N, n) for subspace learning.

    Args:
        x: the layer input (T, B, n) for linear or (T, B, C, H, W) for convolutional synapses.
        signal: "rate" averages over time (one row per sample, or per patch); "spikes" keeps
            every time step (T * B rows).
        max_rows: keep a random subset of at most this many rows (None: all).
    """
    if signal not in SIGNALS:
        raise ValueError(f"signal={signal!r}: choose one of {SIGNALS}")
    x = x.detach()
    x = x.mean(0) if signal == "rate" else x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])
    if isinstance(synapse, nn.Conv2d):
        patches = F.unfold(
            x, synapse.kernel_size, dilation=synapse.dilation, padding=synapse.padding, stride=synapse.stride
        )  # (N, C*k*k, L)
        x = patches.transpose(1, 2).reshape(-1, patches.shape[1])
    if max_rows is not None and x.shape[0] > max_rows:
        x = x[torch.randperm(x.shape[0], generator=generator)[:max_rows]]
    return x


def project_out(matrix: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``M - (M B^T) B``: the rows of ``M`` (m, n) without their components in span(B) (k, n)."""
    if basis.shape[0] == 0:
        return matrix
    return matrix - (matrix @ basis.T) @ basis


def project_gradient(synapse: nn.Linear | nn.Conv2d, basis: torch.Tensor) -> None:
    """Project ``synapse.weight.grad`` in place orthogonally to the rows of ``basis`` (k, n)."""
    grad = synapse.weight.grad
    if grad is None or basis.shape[0] == 0:
        return
    flat = grad.reshape(grad.shape[0], -1)
    grad.copy_(project_out(flat, basis.to(flat.dtype)).reshape(grad.shape))


def energy_rank(spectrum: torch.Tensor, captured: float, total: float, threshold: float) -> int:
    """Fewest leading directions of ``spectrum`` (energies, descending) reaching ``threshold``.

    GPM's criterion (Saha et al. 2021): keep adding new directions while
    ``(captured + sum of those kept) / total < threshold``; ``captured`` is the energy already
    explained by the existing basis, ``total`` the activity's whole energy (squared Frobenius norm).
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"energy threshold must be in (0, 1], got {threshold}")
    if total <= 0:
        return 0
    explained = captured / total
    cumulative = explained + np.cumsum(spectrum.detach().cpu().double().numpy()) / total
    return int(min(len(spectrum), np.searchsorted(cumulative, threshold - 1e-12) + 1)) if explained < threshold else 0


def freeze_non_weights(model: nn.Module) -> None:
    """Freeze biases, neuron parameters and normalisation layers (every parameter with <= 1 dim).

    After the first task only weight matrices may change: a bias or threshold change would
    move the responses to old inputs however the weights are projected. Batch-norm layers are
    put in eval mode (their running statistics stop changing); call again after ``model.train()``.
    """
    for p in model.parameters():
        if p.dim() <= 1:
            p.requires_grad_(False)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


class ActivityHooks:
    """Call ``callback(layer, x)`` with the input ``x`` (T, B, ...) of each synaptic layer.

    Use as a context manager (hooks are removed on exit) or call :meth:`remove`.
    """

    def __init__(self, layers: list[SynapticLayer], callback: Callable[[SynapticLayer, torch.Tensor], None]) -> None:
        self._handles = [
            layer.layer.register_forward_pre_hook(lambda _m, args, layer=layer: callback(layer, args[0]))
            for layer in layers
        ]

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> "ActivityHooks":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


@torch.no_grad()
def collect_activity(
    strategy,
    experience,
    layers: list[SynapticLayer],
    n_samples: int,
    signal: str = "rate",
    max_rows: int | None = None,
) -> list[torch.Tensor]:
    """Activity rows of every layer for a seeded random subset of ``n_samples`` training samples.

    Runs the strategy's model (eval mode, no gradients) on the samples; returns one (N, n)
    tensor per layer, as :func:`activity_rows` builds them.
    """
    rows: dict[int, list[torch.Tensor]] = {id(layer.layer): [] for layer in layers}

    def record(layer: SynapticLayer, x: torch.Tensor) -> None:
        rows[id(layer.layer)].append(activity_rows(x, layer.synapse, signal, max_rows, strategy.generator))

    index = torch.randperm(len(experience), generator=strategy.generator)[: min(n_samples, len(experience))]
    was_training = strategy.model.training
    strategy.model.eval()
    with ActivityHooks(layers, record):
        for start in range(0, len(index), strategy.eval_batch_size):
            x, y = experience.batch(index[start : start + strategy.eval_batch_size])
            strategy.logits(x, torch.full_like(y, experience.task_label))
    strategy.model.train(was_training)
    return [torch.cat(rows[id(layer.layer)]) for layer in layers]
