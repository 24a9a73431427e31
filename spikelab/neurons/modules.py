"""Neuron layers: thin ``nn.Module`` wrappers over the functional core.

Each module owns its parameters as registered buffers (or ``nn.Parameter`` for the names in
``learnable``), so ``state_dict()``, ``.to()``, ``.double()`` and optimisers see them; Norse
keeps them in a plain tuple instead. ``forward`` takes a time-major sequence ``(T, B, ...)``
and an optional state (None means rest: ``v = v_leak``, ``i = 0``) and returns
``(spikes, final_state)``; ``step`` advances a single time step ``(B, ...)``.

Monitors (:class:`spikelab.monitor.Monitor`) attached to a module receive the per-step state
of every forward call without changing what the module returns.
"""

from __future__ import annotations

import math
from typing import Iterable, NamedTuple

import torch
from torch import nn

from spikelab.neurons import functional as F
from spikelab.neurons.fused import check_finite, lif_sequence, lif_sequence_reference
from spikelab.neurons.surrogate import check_method, resolve_alpha

_RATES = ("tau_syn_inv", "tau_mem_inv", "tau_adapt_inv")


def check_sequence(x: torch.Tensor, state: NamedTuple | None, name: str = "x") -> None:
    """``ValueError`` unless ``x`` is a floating ``(T, B, ...)`` tensor matching ``state``."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"`{name}` must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(
            f"`{name}` must be time-major with shape (T, B, ...); got shape {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise ValueError(f"`{name}` must be a floating-point tensor, got {x.dtype}")
    if state is not None:
        for field, value in zip(state._fields, state):
            if value.dim() > 0 and tuple(value.shape) != tuple(x.shape[1:]):
                raise ValueError(
                    f"state.{field} has shape {tuple(value.shape)} but `{name}` needs "
                    f"(B, ...) = {tuple(x.shape[1:])}"
                )


class NeuronModule(nn.Module):
    """Shared plumbing: parameter registration and validation, monitors, repr."""

    parameter_names: tuple[str, ...] = ()

    def __init__(
        self,
        values: dict[str, float | torch.Tensor],
        *,
        dt: float,
        method: str,
        alpha: float | None,
        integration: str,
        learnable: Iterable[str],
    ) -> None:
        super().__init__()
        if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be a positive number of seconds, got {dt!r}")
        if integration not in F.INTEGRATIONS:
            raise ValueError(f"integration={integration!r}: choose one of {F.INTEGRATIONS}")
        check_method(method)
        learnable = set(learnable)
        unknown = learnable - set(values)
        if unknown:
            raise ValueError(f"learnable names {sorted(unknown)} are not parameters of {type(self).__name__}")
        self.dt = float(dt)
        self.method = method
        self.alpha = resolve_alpha(method, alpha)
        self.integration = integration
        for name, value in values.items():
            tensor = torch.as_tensor(value).detach().clone()
            if not tensor.is_floating_point():
                tensor = tensor.to(torch.get_default_dtype())
            _check_value(name, tensor, self.dt, integration)
            if name in learnable:
                self.register_parameter(name, nn.Parameter(tensor))
            else:
                self.register_buffer(name, tensor)
        self._monitors: list = []

    def extra_repr(self) -> str:
        vals = []
        for name in self.parameter_names:
            t = getattr(self, name)
            vals.append(f"{name}={t.item():g}" if t.numel() == 1 else f"{name}=<{tuple(t.shape)}>")
        vals += [f"method={self.method!r}", f"dt={self.dt:g}", f"integration={self.integration!r}"]
        return ", ".join(vals)

    def _check_neuron_shape(self, neuron_shape: torch.Size) -> None:
        for name in self.parameter_names:
            shape = getattr(self, name).shape
            # broadcasting to the neuron shape without torch.broadcast_shapes (40 us per call)
            ok = len(shape) <= len(neuron_shape) and all(
                s == 1 or s == n for s, n in zip(reversed(shape), reversed(neuron_shape))
            )
            if not ok:
                raise ValueError(
                    f"parameter {name} has shape {tuple(shape)}, which does not broadcast to "
                    f"the neuron shape {tuple(neuron_shape)} of the input"
                )

    def _notify(self, spikes: torch.Tensor, trace: NamedTuple) -> None:
        for monitor in self._monitors:
            monitor.record(self, spikes, trace)


def _check_value(name: str, value: torch.Tensor, dt: float, integration: str) -> None:
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} must be finite, got {value}")
    if name in _RATES:
        if (value <= 0).any():
            raise ValueError(f"{name} (an inverse time constant, 1/s) must be positive, got {value}")
        if integration == "euler" and (dt * value > 1).any():
            raise ValueError(
                f"dt * {name} = {(dt * value).max().item():g} > 1: forward Euler is unstable; "
                "use a smaller dt, a slower time constant, or integration='exact'"
            )


class LIF(NeuronModule):
    """Current-based leaky integrate-and-fire layer (Norse ``LIF`` semantics).

    ``v`` leaks toward ``v_leak`` with rate ``tau_mem_inv`` and integrates the synaptic current
    ``i``, which decays with ``tau_syn_inv`` and receives the input each step; a spike is emitted
    when ``v > v_th`` and ``v`` is set to ``v_reset``. The whole sequence runs in the fused
    kernel (:func:`spikelab.neurons.fused.lif_sequence`); spikes equal Norse's exactly.

    Args:
        tau_syn_inv, tau_mem_inv: inverse time constants in 1/s (scalars or per-neuron tensors).
        v_leak, v_th, v_reset: potentials (scalars or per-neuron tensors).
        method, alpha: surrogate gradient (:mod:`spikelab.neurons.surrogate`).
        dt: time step in seconds. integration: ``"euler"`` (as Norse) or ``"exact"``.
        learnable: names of parameters to train (uses the autograd path, slower).
        fused: None (use the fused kernel when possible), False (always the reference loop).

    Shapes: ``x`` (T, B, ...) -> spikes (T, B, ...), :class:`LIFState` with (B, ...) tensors.
    """

    parameter_names = ("tau_syn_inv", "tau_mem_inv", "v_leak", "v_th", "v_reset")

    def __init__(
        self,
        tau_syn_inv: float | torch.Tensor = 200.0,
        tau_mem_inv: float | torch.Tensor = 100.0,
        v_leak: float | torch.Tensor = 0.0,
        v_th: float | torch.Tensor = 1.0,
        v_reset: float | torch.Tensor = 0.0,
        *,
        method: str = "super",
        alpha: float | None = None,
        dt: float = 1e-3,
        integration: str = "euler",
        learnable: Iterable[str] = (),
        fused: bool | None = None,
    ) -> None:
        values = dict(tau_syn_inv=tau_syn_inv, tau_mem_inv=tau_mem_inv, v_leak=v_leak, v_th=v_th, v_reset=v_reset)
        super().__init__(values, dt=dt, method=method, alpha=alpha, integration=integration, learnable=learnable)
        self.fused = fused

    @property
    def p(self) -> F.LIFParameters:
        """The parameters as a :class:`LIFParameters` tuple for the functional core."""
        return F.LIFParameters(
            self.tau_syn_inv, self.tau_mem_inv, self.v_leak, self.v_th, self.v_reset,
            self.method, self.alpha, self.integration,
        )

    def initial_state(self, x_step: torch.Tensor) -> F.LIFState:
        """Rest state for one time step of input ``x_step`` (B, ...)."""
        v = self.v_leak.detach().to(x_step.dtype).expand(x_step.shape).clone()
        return F.LIFState(v=v, i=torch.zeros_like(x_step))

    def forward(self, x: torch.Tensor, state: F.LIFState | None = None):
        check_sequence(x, state)
        self._check_neuron_shape(x.shape[2:])
        state = self.initial_state(x[0]) if state is None else state
        record = bool(self._monitors)
        z, state, trace = lif_sequence(x, state, self.p, self.dt, record=record, fused=self.fused)
        if record:
            self._notify(z, trace)
        return z, state

    def step(self, x_t: torch.Tensor, state: F.LIFState | None = None):
        """One time step: ``x_t`` (B, ...) -> (spikes (B, ...), state)."""
        state = self.initial_state(x_t) if state is None else state
        return F.lif_step(x_t, state, self.p, self.dt)


class LIFBox(NeuronModule):
    """LIF without synaptic current: the input drives the membrane directly (Norse ``LIFBox``).

    ``v_d = v + a_m (x + v_leak - v)``; spike when ``v_d > v_th``; reset to ``v_reset``.
    Shapes as :class:`LIF`; state :class:`LIFBoxState`.
    """

    parameter_names = ("tau_mem_inv", "v_leak", "v_th", "v_reset")

    def __init__(
        self,
        tau_mem_inv: float | torch.Tensor = 100.0,
        v_leak: float | torch.Tensor = 0.0,
        v_th: float | torch.Tensor = 1.0,
        v_reset: float | torch.Tensor = 0.0,
        *,
        method: str = "super",
        alpha: float | None = None,
        dt: float = 1e-3,
        integration: str = "euler",
        learnable: Iterable[str] = (),
    ) -> None:
        values = dict(tau_mem_inv=tau_mem_inv, v_leak=v_leak, v_th=v_th, v_reset=v_reset)
        super().__init__(values, dt=dt, method=method, alpha=alpha, integration=integration, learnable=learnable)

    @property
    def p(self) -> F.LIFBoxParameters:
        """The parameters as a :class:`LIFBoxParameters` tuple for the functional core."""
        return F.LIFBoxParameters(
            self.tau_mem_inv, self.v_leak, self.v_th, self.v_reset, self.method, self.alpha, self.integration
        )

    def initial_state(self, x_step: torch.Tensor) -> F.LIFBoxState:
        """Rest state for one time step of input ``x_step`` (B, ...)."""
        return F.LIFBoxState(v=self.v_leak.detach().to(x_step.dtype).expand(x_step.shape).clone())

    def forward(self, x: torch.Tensor, state: F.LIFBoxState | None = None):
        return _run_steps(self, x, state, F.lif_box_step)

    def step(self, x_t: torch.Tensor, state: F.LIFBoxState | None = None):
        """One time step: ``x_t`` (B, ...) -> (spikes (B, ...), state)."""
        state = self.initial_state(x_t) if state is None else state
        return F.lif_box_step(x_t, state, self.p, self.dt)


class AdaptiveLIF(NeuronModule):
    """LIF with an adaptive threshold (Norse ``LSNN`` feed-forward semantics).

    The threshold ``b`` starts at ``v_th``, relaxes back with rate ``tau_adapt_inv`` and jumps by
    ``beta`` at every spike, so sustained input produces slowing spike trains.
    Shapes as :class:`LIF`; state :class:`AdaptiveLIFState`.
    """

    parameter_names = ("tau_syn_inv", "tau_mem_inv", "tau_adapt_inv", "v_leak", "v_th", "v_reset", "beta")

    def __init__(
        self,
        tau_syn_inv: float | torch.Tensor = 200.0,
        tau_mem_inv: float | torch.Tensor = 100.0,
        tau_adapt_inv: float | torch.Tensor = 1.0 / 800,
        v_leak: float | torch.Tensor = 0.0,
        v_th: float | torch.Tensor = 1.0,
        v_reset: float | torch.Tensor = 0.0,
        beta: float | torch.Tensor = 1.8,
        *,
        method: str = "super",
        alpha: float | None = None,
        dt: float = 1e-3,
        integration: str = "euler",
        learnable: Iterable[str] = (),
    ) -> None:
        values = dict(
            tau_syn_inv=tau_syn_inv, tau_mem_inv=tau_mem_inv, tau_adapt_inv=tau_adapt_inv,
            v_leak=v_leak, v_th=v_th, v_reset=v_reset, beta=beta,
        )
        super().__init__(values, dt=dt, method=method, alpha=alpha, integration=integration, learnable=learnable)

    @property
    def p(self) -> F.AdaptiveLIFParameters:
        """The parameters as an :class:`AdaptiveLIFParameters` tuple for the functional core."""
        return F.AdaptiveLIFParameters(
            self.tau_syn_inv, self.tau_mem_inv, self.tau_adapt_inv, self.v_leak, self.v_th,
            self.v_reset, self.beta, self.method, self.alpha, self.integration,
        )

    def initial_state(self, x_step: torch.Tensor) -> F.AdaptiveLIFState:
        """Rest state for one time step of input ``x_step`` (B, ...): threshold at ``v_th``."""
        like = lambda t: t.detach().to(x_step.dtype).expand(x_step.shape).clone()  # noqa: E731
        return F.AdaptiveLIFState(v=like(self.v_leak), i=torch.zeros_like(x_step), b=like(self.v_th))

    def forward(self, x: torch.Tensor, state: F.AdaptiveLIFState | None = None):
        return _run_steps(self, x, state, F.adaptive_lif_step)

    def step(self, x_t: torch.Tensor, state: F.AdaptiveLIFState | None = None):
        """One time step: ``x_t`` (B, ...) -> (spikes (B, ...), state)."""
        state = self.initial_state(x_t) if state is None else state
        return F.adaptive_lif_step(x_t, state, self.p, self.dt)


def _run_steps(module: NeuronModule, x: torch.Tensor, state, step_fn):
    """Sequence forward by looping a functional step (models without a fused kernel)."""
    check_sequence(x, state)
    check_finite(x)
    module._check_neuron_shape(x.shape[2:])
    state = module.initial_state(x[0]) if state is None else state
    p = module.p
    record = bool(module._monitors)
    spikes, states = [], []
    for x_t in x:
        z, state = step_fn(x_t, state, p, module.dt)
        spikes.append(z)
        if record:
            states.append(state)
    z = torch.stack(spikes)
    if record:
        module._notify(z, type(state)(*(torch.stack(s) for s in zip(*states))))
    return z, state


__all__ = ["LIF", "LIFBox", "AdaptiveLIF", "NeuronModule", "check_sequence", "lif_sequence_reference"]
