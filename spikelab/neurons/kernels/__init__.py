"""Fused multi-step LIF kernels: numba on CPU, Triton on CUDA.

Both implement exactly the arithmetic of :func:`spikelab.neurons.functional.lif_step` (same
operations in the same order, no fused multiply-add), so spikes are bit-identical to the
reference path and to Norse.
"""
