"""Between spikelab models (torch) and the backend-neutral :class:`~spikelab.hardware.network.Network`.

:func:`extract` reads a trained model into float stages; :func:`to_model` builds the spikelab
model of a network (used by the NIR importer); :func:`stage_spikes` runs a model and returns the
spikes of every stage, for comparison with the backends.

Supported layers, in order ``[flatten | average pooling]* synapse neuron``, repeated:
``SpikingLinear``, ``SpikingConv2d``, ``TimeDistributed`` of ``nn.Linear`` / ``nn.Conv2d`` /
``nn.Flatten`` / ``nn.AvgPool2d``, ``nn.Flatten(start_dim=2)``, ``nn.Identity``, ``nn.Dropout``
(inference no-op), neurons :class:`~spikelab.neurons.LIF` and :class:`~spikelab.neurons.LIFBox`.
Pooling is folded into the next synapse (exact: both are linear); anything else raises
:class:`~spikelab.hardware.network.UnsupportedLayerError` naming the layer.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from spikelab.hardware.network import (
    FloatNeuron, Network, Stage, Synapse, UnsupportedLayerError, conv_output_hw,
)
from spikelab.layers import SequentialState, SpikingConv2d, SpikingLinear, TimeDistributed
from spikelab.monitor import Monitor
from spikelab.neurons import LIF, LIFBox
from spikelab.neurons.functional import decay_coefficient

_NO_OPS = (nn.Identity, nn.Dropout)


def walk(module: nn.Module, path: str = ""):
    """Yield ``(path, kind, module)`` operations of a (nested) sequential model in order."""
    here = path or type(module).__name__
    if isinstance(module, (SequentialState, nn.Sequential)):
        for name, child in module.named_children():
            yield from walk(child, f"{path}.{name}" if path else name)
    elif isinstance(module, (SpikingLinear, SpikingConv2d)):
        yield from walk(TimeDistributed(module.synapse), f"{path}.synapse" if path else "synapse")
        yield (f"{path}.neuron" if path else "neuron", "neuron", module.neuron)
    elif isinstance(module, TimeDistributed):
        inner = module.module
        if isinstance(inner, nn.Linear):
            yield here, "dense", inner
        elif isinstance(inner, nn.Conv2d):
            yield here, "conv", inner
        elif isinstance(inner, nn.Flatten):
            if inner.start_dim != 1 or inner.end_dim != -1:
                raise UnsupportedLayerError(
                    f"layer {here!r}: only a full flatten (start_dim=1, end_dim=-1 per time step) is supported"
                )
            yield here, "flatten", inner
        elif isinstance(inner, nn.AvgPool2d):
            yield here, "pool", inner
        elif isinstance(inner, _NO_OPS):
            return
        else:
            raise _unsupported(here, inner)
    elif isinstance(module, nn.Flatten):
        if module.start_dim != 2 or module.end_dim != -1:
            raise UnsupportedLayerError(
                f"layer {here!r}: nn.Flatten on (T, B, ...) input must use start_dim=2, end_dim=-1 "
                f"(got {module.start_dim}, {module.end_dim}); or wrap nn.Flatten() in TimeDistributed"
            )
        yield here, "flatten", module
    elif isinstance(module, (LIF, LIFBox)) and type(module) in (LIF, LIFBox):
        yield here, "neuron", module
    elif isinstance(module, _NO_OPS):
        return
    else:
        raise _unsupported(here, module)


def _unsupported(path: str, module: nn.Module) -> UnsupportedLayerError:
    hint = {
        "MaxPool2d": "a max over spikes has no Loihi synapse; use nn.AvgPool2d (folded into the next layer)",
        "AdaptiveLIF": "Loihi 2's LIF has no adaptive threshold",
    }.get(type(module).__name__, "supported: SpikingLinear, SpikingConv2d, LIF, LIFBox, Flatten, AvgPool2d")
    return UnsupportedLayerError(f"layer {path!r} ({type(module).__name__}) cannot be exported: {hint}")


def _uniform(name: str, param: str, value: torch.Tensor) -> float:
    flat = value.detach().double().reshape(-1)
    if flat.numel() > 1 and not torch.all(flat == flat[0]):
        raise UnsupportedLayerError(
            f"layer {name!r}: {param} varies across neurons ({flat.min().item():g} to {flat.max().item():g}); "
            "Loihi 2 has one value per population"
        )
    return float(flat[0])


def _neuron(name: str, module: nn.Module, shape: tuple[int, ...]) -> FloatNeuron:
    dt = module.dt
    tau_mem_inv = _uniform(name, "tau_mem_inv", module.tau_mem_inv)
    a_mem = float(decay_coefficient(torch.tensor(tau_mem_inv, dtype=torch.float64), dt, module.integration))
    if isinstance(module, LIF):
        tau_syn_inv = _uniform(name, "tau_syn_inv", module.tau_syn_inv)
        a_syn = float(decay_coefficient(torch.tensor(tau_syn_inv, dtype=torch.float64), dt, module.integration))
        model = "LIF"
    else:
        tau_syn_inv, a_syn, model = None, 1.0, "LIFBox"
    v_leak = module.v_leak.detach().double().expand(shape).numpy().copy()
    return FloatNeuron(
        tau_syn_inv=tau_syn_inv, tau_mem_inv=tau_mem_inv, a_syn=a_syn, a_mem=a_mem,
        v_th=_uniform(name, "v_th", module.v_th), v_reset=_uniform(name, "v_reset", module.v_reset),
        v_leak=v_leak, integration=module.integration, model=model,
    )


def _pool_params(name: str, pool: nn.AvgPool2d) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], bool]:
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    k, s, p = pair(pool.kernel_size), pair(pool.stride if pool.stride is not None else pool.kernel_size), pair(pool.padding)
    if pool.ceil_mode:
        raise UnsupportedLayerError(f"layer {name!r}: AvgPool2d(ceil_mode=True) is not supported")
    return k, s, p, pool.divisor_override is not None


def _fold_dense(pools, weight: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Weight of ``Linear(pool(x))`` as a matrix on the un-pooled population (vector-Jacobian)."""
    def ops(x):
        for name, _, m in pools:
            _pool_params(name, m)
            x = m(x)
        return x.reshape(-1)

    x = torch.zeros((1, *shape), dtype=torch.float64)
    _, vjp = torch.func.vjp(ops, x)
    return torch.func.vmap(vjp)(weight.double())[0].reshape(weight.shape[0], -1)


def _conv_synapse(name, conv: nn.Conv2d, pools, shape) -> Synapse:
    if conv.padding_mode != "zeros":
        raise UnsupportedLayerError(f"layer {name!r}: padding_mode={conv.padding_mode!r}; Loihi pads with zeros")
    weight = conv.weight.detach().double().numpy()
    kh, kw = weight.shape[2:]
    dilation, stride = tuple(conv.dilation), tuple(conv.stride)
    if conv.padding == "same":
        if (dilation[0] * (kh - 1)) % 2 or (dilation[1] * (kw - 1)) % 2:
            raise UnsupportedLayerError(f"layer {name!r}: padding='same' with an even kernel is asymmetric")
        padding = (dilation[0] * (kh - 1) // 2, dilation[1] * (kw - 1) // 2)
    elif conv.padding == "valid":
        padding = (0, 0)
    else:
        padding = tuple(conv.padding)
    if len(pools) > 1:
        raise UnsupportedLayerError(f"layer {pools[1][0]!r}: only one pooling layer can precede a convolution")
    for pname, pool in pools:
        k, s, p, summed = _pool_params(pname, pool)
        if s != k or p != (0, 0) or dilation != (1, 1):
            raise UnsupportedLayerError(
                f"layer {pname!r}: average pooling before a convolution is folded into it only with "
                f"stride == kernel_size, no padding and an undilated convolution (got kernel {k}, "
                f"stride {s}, padding {p}, dilation {dilation})"
            )
        if any(pad and n % kk for pad, n, kk in zip(padding, shape[1:], k)):
            raise UnsupportedLayerError(
                f"layer {pname!r}: average pooling before a zero-padded convolution is folded into it only "
                f"when the population's height and width {shape[1:]} are multiples of the pool size {k}"
            )
        scale = 1.0 / pool.divisor_override if summed else 1.0 / (k[0] * k[1])
        weight = np.repeat(np.repeat(weight, k[0], axis=2), k[1], axis=3) * scale
        stride = (stride[0] * k[0], stride[1] * k[1])
        padding = (padding[0] * k[0], padding[1] * k[1])
    out_hw = conv_output_hw(shape[1:], weight.shape[2:], stride, padding, dilation)
    bias = None if conv.bias is None else conv.bias.detach().double().numpy()
    return Synapse("conv", weight, bias, shape, (weight.shape[0], *out_hw), stride, padding, dilation, conv.groups)


def extract(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> Network:
    """Read a trained spikelab model into a float :class:`Network` (no quantisation yet).

    input_shape: shape of one input sample without time and batch; needed when the model starts
    with a convolution, e.g. ``(1, 28, 28)``; for a dense first layer it defaults to ``(in_features,)``.
    """
    ops = list(walk(model))
    first = next((m for _, kind, m in ops if kind in ("dense", "conv")), None)
    if first is None:
        raise UnsupportedLayerError("the model has no Linear or Conv2d synapse to export")
    if input_shape is None:
        if isinstance(first, nn.Conv2d):
            raise ValueError(
                "the model starts with a convolution: give its input shape (C, H, W) "
                "(input_shape=..., or --input-shape C,H,W on the command line)"
            )
        input_shape = (first.in_features,)
    shape = tuple(int(s) for s in input_shape)
    stages: list[Stage] = []
    dts = set()
    pending: list = []
    synapse: Synapse | None = None
    syn_name = ""
    for name, kind, module in ops:
        if kind in ("flatten", "pool"):
            if synapse is not None:
                raise UnsupportedLayerError(f"layer {name!r}: {kind} between a synapse and its neuron layer")
            pending.append((name, kind, module))
            continue
        if kind in ("dense", "conv"):
            if synapse is not None:
                raise UnsupportedLayerError(
                    f"layer {name!r}: two synaptic layers ({syn_name!r}, {name!r}) without a neuron layer between them"
                )
            syn_name = name
            if kind == "dense":
                pools = [(n, k, m) for n, k, m in pending if k == "pool"]
                if pools and len(shape) != 3:
                    raise UnsupportedLayerError(f"layer {pools[0][0]!r}: pooling needs a (C, H, W) population, got {shape}")
                n_pre = _pooled_size(pools, shape)
                if module.in_features != n_pre:
                    raise UnsupportedLayerError(
                        f"layer {name!r}: Linear expects {module.in_features} inputs but the previous "
                        f"population has {n_pre} (shape {shape})"
                    )
                w = module.weight.detach().double()
                w = (_fold_dense(pools, w, shape) if pools else w).numpy()
                bias = None if module.bias is None else module.bias.detach().double().numpy()
                synapse = Synapse("dense", w, bias, shape, (module.out_features,))
            else:
                if len(shape) != 3 or any(k == "flatten" for _, k, _ in pending):
                    raise UnsupportedLayerError(f"layer {name!r}: Conv2d needs a (C, H, W) population, got shape {shape}")
                if module.in_channels != shape[0]:
                    raise UnsupportedLayerError(
                        f"layer {name!r}: Conv2d expects {module.in_channels} channels, the population has {shape[0]}"
                    )
                synapse = _conv_synapse(name, module, [(n, m) for n, _, m in pending], shape)
            pending = []
            continue
        # neuron
        if synapse is None:
            raise UnsupportedLayerError(f"layer {name!r}: a neuron layer must follow a Linear or Conv2d synapse")
        dts.add(module.dt)
        stages.append(Stage(name, synapse, _neuron(name, module, synapse.output_shape)))
        shape = synapse.output_shape
        synapse = None
    if synapse is not None or pending:
        raise UnsupportedLayerError(
            f"layer {syn_name or pending[0][0]!r}: the model must end with a neuron layer (its spikes are the output)"
        )
    if len(dts) != 1:
        raise UnsupportedLayerError(f"all neuron layers must share one time step dt; found {sorted(dts)}")
    return Network(input_shape=tuple(input_shape), dt=dts.pop(), stages=stages,
                   meta={"source": type(model).__name__})


def _pooled_size(pools, shape) -> int:
    x = torch.zeros((1, *shape))
    for _, _, m in pools:
        x = m(x)
    return int(x.numel())


def to_model(net: Network) -> SequentialState:
    """The spikelab model (float, float32 parameters) of a network: SpikingLinear / SpikingConv2d + LIF."""
    layers: list[nn.Module] = []
    shape = tuple(net.input_shape)
    for stage in net.stages:
        syn, nrn = stage.synapse, stage.neuron
        has_bias = syn.bias is not None
        if syn.kind == "dense":
            if len(shape) > 1:
                layers.append(TimeDistributed(nn.Flatten()))
            layer = SpikingLinear(syn.weight.shape[1], syn.weight.shape[0], neuron=_make_neuron(nrn, net.dt), bias=has_bias)
        else:
            layer = SpikingConv2d(
                syn.weight.shape[1] * syn.groups, syn.weight.shape[0], tuple(syn.weight.shape[2:]),
                neuron=_make_neuron(nrn, net.dt), stride=syn.stride, padding=syn.padding,
                dilation=syn.dilation, groups=syn.groups, bias=has_bias,
            )
        with torch.no_grad():
            layer.synapse.weight.copy_(torch.from_numpy(np.asarray(syn.weight, dtype=np.float64)))
            if has_bias:
                layer.synapse.bias.copy_(torch.from_numpy(np.asarray(syn.bias, dtype=np.float64)))
        layers.append(layer)
        shape = syn.output_shape
    return SequentialState(*layers)


def _make_neuron(n: FloatNeuron, dt: float) -> nn.Module:
    v_leak = np.asarray(n.v_leak, dtype=np.float64)
    leak = float(v_leak.flat[0]) if v_leak.size and np.all(v_leak == v_leak.flat[0]) else torch.from_numpy(v_leak)
    common = dict(tau_mem_inv=n.tau_mem_inv, v_leak=leak, v_th=n.v_th, v_reset=n.v_reset, dt=dt, integration=n.integration)
    if n.model == "LIFBox":
        return LIFBox(**common)
    return LIF(tau_syn_inv=n.tau_syn_inv, **common)


def stage_spikes(model: nn.Module, net: Network, spikes: torch.Tensor) -> list[np.ndarray]:
    """Run the float model on input spikes (T, B, ...) and return every stage's spikes as uint8 arrays."""
    with torch.no_grad(), Monitor(model, layers=[s.name for s in net.stages]) as mon:
        model(spikes)
    return [mon[s.name]["z"].numpy().astype(np.uint8) for s in net.stages]

