"""Spiking neuron models: functional core, fused kernels and ``nn.Module`` layers."""

from spikelab.neurons.functional import (
    AdaptiveLIFParameters,
    AdaptiveLIFState,
    LIFBoxParameters,
    LIFBoxState,
    LIFParameters,
    LIFState,
    adaptive_lif_step,
    lif_box_step,
    lif_step,
)
from spikelab.neurons.fused import LIFTrace, lif_sequence, lif_sequence_reference
from spikelab.neurons.modules import LIF, AdaptiveLIF, LIFBox, NeuronModule
from spikelab.neurons.surrogate import SURROGATE_CODES, spike_fn, surrogate_derivative

__all__ = [
    "LIF", "LIFBox", "AdaptiveLIF", "NeuronModule",
    "LIFParameters", "LIFState", "LIFBoxParameters", "LIFBoxState",
    "AdaptiveLIFParameters", "AdaptiveLIFState", "LIFTrace",
    "lif_step", "lif_box_step", "adaptive_lif_step", "lif_sequence", "lif_sequence_reference",
    "spike_fn", "surrogate_derivative", "SURROGATE_CODES",
]
