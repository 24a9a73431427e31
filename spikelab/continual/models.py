"""Spiking networks for continual learning, and discovery of their synaptic layers.

:class:`ContinualSNN` is a body of spikelab layers (a :class:`SequentialState`) followed by
one readout head, or one head per task (task-incremental, multi-head). Heads are either
spiking (:class:`SpikingLinear`, logits = ``readout_scale`` x firing rate) or a non-spiking
linear readout averaged over time (as in the HLOP reference code), also times ``readout_scale``. :meth:`ContinualSNN.as_sequential`
returns the network for one task as a plain ``SequentialState`` sharing the same modules, for
export to hardware.

:func:`synaptic_layers` lists the layers whose weights continual-learning methods protect
(HLOP, GPM): every :class:`SpikingLinear`, :class:`SpikingConv2d` and ``TimeDistributed``
linear/conv layer of the body, and the head when it is shared by all tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from spikelab.layers import SequentialState, SpikingConv2d, SpikingLinear, TimeDistributed
from spikelab.neurons import LIF


@dataclass
class SynapticLayer:
    """A layer with a weight matrix: its dotted name, the layer module and its synapse."""

    name: str
    layer: nn.Module
    synapse: nn.Linear | nn.Conv2d

    @property
    def in_features(self) -> int:
        """Dimension of the presynaptic activity: input features, or C_in * k * k patches for conv."""
        if isinstance(self.synapse, nn.Linear):
            return self.synapse.in_features
        return self.synapse.in_channels * self.synapse.kernel_size[0] * self.synapse.kernel_size[1]


class TimeSharedLinear(nn.Linear):
    """``nn.Linear`` that computes an input repeated over time only once.

    Direct (analog) encoding feeds the same input at every step, as ``x.expand(T, ...)``
    (stride 0 along time). This layer then applies the weights to ``x[0]`` and expands the
    result, instead of multiplying ``T`` identical copies; results and gradients are the same.
    It is a plain ``nn.Linear`` otherwise (same parameters and state-dict keys).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() >= 3 and x.stride(0) == 0:
            return super().forward(x[0]).expand(x.shape[0], *x.shape[1:-1], self.out_features)
        return super().forward(x)


def _synapse_of(module: nn.Module) -> nn.Linear | nn.Conv2d | None:
    if isinstance(module, (SpikingLinear, SpikingConv2d)):
        return module.synapse
    if isinstance(module, TimeDistributed) and isinstance(module.module, (nn.Linear, nn.Conv2d)):
        return module.module
    return None


class ContinualSNN(nn.Module):
    """A spiking body and one or more readout heads; input (T, B, ...) -> logits (B, n_outputs).

    Args:
        body: the shared layers, a :class:`SequentialState`.
        heads: one head per task (task-incremental) or a single shared head.
        readout: "spikes" (heads are spiking layers; logits = ``readout_scale`` x firing rate) or
            "linear" (heads are ``TimeDistributed`` linear layers; logits = ``readout_scale`` x
            their mean over time).
        readout_scale: factor on the time-averaged head output (the value of one spike).
    """

    def __init__(self, body: SequentialState, heads: list[nn.Module], readout: str = "spikes", readout_scale: float = 10.0) -> None:
        super().__init__()
        if readout not in ("spikes", "linear"):
            raise ValueError(f"readout={readout!r}: choose 'spikes' or 'linear'")
        self.body = body
        self.heads = nn.ModuleList(heads)
        self.readout = readout
        self.readout_scale = float(readout_scale)

    @property
    def multi_head(self) -> bool:
        return len(self.heads) > 1

    def _head(self, h: torch.Tensor, index: int) -> torch.Tensor:
        head = self.heads[index]
        out = head(h)[0] if self.readout == "spikes" else head(h)
        return out.mean(0) * self.readout_scale

    def forward(self, x: torch.Tensor, task_labels: torch.Tensor | int | None = None) -> torch.Tensor:
        """Logits (B, n_outputs); ``task_labels`` (B,) or an int pick the heads when multi-head."""
        h, _ = self.body(x)
        if not self.multi_head:
            return self._head(h, 0)
        if task_labels is None:
            raise ValueError("a multi-head (task-incremental) model needs the task labels")
        labels = torch.as_tensor(task_labels).expand(x.shape[1])
        if int(labels.max()) >= len(self.heads) or int(labels.min()) < 0:
            raise ValueError(f"task labels must be in 0..{len(self.heads) - 1}")
        out = None
        for t in labels.unique().tolist():
            rows = torch.nonzero(labels == t).squeeze(1)
            logits = self._head(h[:, rows], t)
            out = logits.new_zeros(x.shape[1], logits.shape[1]) if out is None else out
            out = out.index_copy(0, rows, logits)
        return out

    def as_sequential(self, task: int = 0) -> SequentialState:
        """The network for ``task`` as one ``SequentialState`` (shares modules; for export)."""
        return SequentialState(*self.body, self.heads[task if self.multi_head else 0])


def build_mlp(
    in_features: int,
    hidden: list[int],
    n_outputs: int,
    *,
    n_heads: int = 1,
    bias: bool = False,
    readout: str = "spikes",
    readout_scale: float = 10.0,
    neuron: dict | None = None,
    init_gain: float = 1.0,
) -> ContinualSNN:
    """A spiking MLP ``in_features -> hidden... -> n_outputs`` of :class:`SpikingLinear` + :class:`LIF`.

    The first layer's synapse is a :class:`TimeSharedLinear` (an ``nn.Linear`` that computes a
    time-constant input once). ``neuron`` holds keyword arguments of :class:`LIF` (time constants, threshold, surrogate);
    ``init_gain`` scales PyTorch's default weight initialisation (spiking layers need larger
    weights than ReLU networks to fire within a short window).
    """
    neuron = dict(neuron or {})
    sizes = [in_features, *hidden]
    body = SequentialState(*(SpikingLinear(a, b, LIF(**neuron), bias=bias) for a, b in zip(sizes[:-1], sizes[1:])))
    first = body[0].synapse
    body[0].synapse = nn.utils.skip_init(TimeSharedLinear, first.in_features, first.out_features, bias=bias)
    body[0].synapse.load_state_dict(first.state_dict())  # same weights, no extra random draws

    def head() -> nn.Module:
        if readout == "spikes":
            return SpikingLinear(sizes[-1], n_outputs, LIF(**neuron), bias=bias)
        return TimeDistributed(nn.Linear(sizes[-1], n_outputs, bias=bias))

    model = ContinualSNN(body, [head() for _ in range(n_heads)], readout, readout_scale)
    with torch.no_grad():
        for layer in synaptic_layers(model, include_heads=True):
            layer.synapse.weight.mul_(init_gain)
    return model


def synaptic_layers(model: nn.Module, include_heads: bool | None = None) -> list[SynapticLayer]:
    """The layers with weights that continual-learning methods protect, in forward order.

    ``include_heads=None`` includes the head only when it is shared (single-head models).
    """
    if include_heads is None:
        include_heads = not (isinstance(model, ContinualSNN) and model.multi_head)
    found = []
    for name, module in model.named_modules():
        if not include_heads and name.startswith("heads."):
            continue
        synapse = _synapse_of(module)
        if synapse is not None:
            if isinstance(synapse, nn.Conv2d) and synapse.groups != 1:
                raise ValueError(f"layer {name}: grouped convolutions are not supported by subspace projection")
            found.append(SynapticLayer(name, module, synapse))
    if not found:
        raise ValueError("the model has no SpikingLinear / SpikingConv2d / TimeDistributed linear layers")
    return found
