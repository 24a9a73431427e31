"""Export spikelab models to NIR and import NIR graphs as spikelab models (``nir`` package).

Node mapping (graphs are chains ``Input -> ... -> Output``):

============================== ===========================================================
spikelab                       NIR
============================== ===========================================================
``nn.Linear`` (with bias)      ``Affine`` (``Linear`` without bias)
``nn.Conv2d``                  ``Conv2d`` (``input_shape`` set, zero bias if none)
``nn.Flatten``                 ``Flatten(start_dim=0)`` on the unbatched shape
``nn.AvgPool2d``               ``AvgPool2d``; with ``divisor_override=1``: ``SumPool2d``
``LIF``                        ``CubaLIF``
``LIFBox``                     ``LIF``
============================== ===========================================================

Time constants are written in seconds (``tau = 1 / tau_inv``), with ``v_reset`` kept (Norse
1.1.0's own exporter writes ``dt * tau`` and drops ``v_reset``). spikelab's discrete LIF is the
forward-Euler discretisation of NIR's equations with the input sampled once per step::

    i <- (1 - dt/tau_syn) i + (dt/tau_syn) w_in x,    v <- v + (dt/tau_mem) ((v_leak - v) + r i)

which equals spikelab's ``i_jump`` recursion for ``r = 1`` and ``w_in = tau_syn / dt`` (the
values written). ``dt`` goes into the graph's metadata, the integration scheme (``euler`` or
``exact``) into each neuron node's metadata. On import,
any other ``w_in * r`` is folded into the weights of the synapse before the neuron, so graphs
from other producers load as the same dynamics. The round trip model -> NIR -> model is exact
for spikelab's float32 parameters.
"""

from __future__ import annotations

import os
from pathlib import Path

import nir
import numpy as np
import torch
from torch import nn

from spikelab.atomic import atomic_path
from spikelab.errors import DataError
from spikelab.hardware.extract import walk
from spikelab.hardware.network import UnsupportedLayerError
from spikelab.layers import SequentialState, SpikingConv2d, SpikingLinear, TimeDistributed
from spikelab.neurons import LIF, LIFBox
from spikelab.neurons.functional import decay_coefficient

#: |w_in * r * dt / tau_syn - 1| below this counts as exactly 1 (float rounding of 1/(1/x)).
UNIT_TOLERANCE = 1e-9


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _per_neuron(value: torch.Tensor, shape) -> np.ndarray:
    return np.broadcast_to(_np(value), shape).copy()


def _alpha(tau_inv: np.ndarray, dt: float, integration: str) -> np.ndarray:
    return decay_coefficient(torch.from_numpy(np.asarray(tau_inv, np.float64)), dt, integration).numpy()


def _neuron_node(module: nn.Module, shape: tuple[int, ...]) -> nir.NIRNode:
    dt, integ = module.dt, module.integration
    common = dict(
        v_leak=_per_neuron(module.v_leak, shape), v_threshold=_per_neuron(module.v_th, shape),
        v_reset=_per_neuron(module.v_reset, shape),
    )
    tau_mem = 1.0 / _per_neuron(module.tau_mem_inv, shape).astype(np.float64)
    meta = {"metadata": {"integration": integ}}
    if isinstance(module, LIF):
        tau_syn_inv = _per_neuron(module.tau_syn_inv, shape).astype(np.float64)
        return nir.CubaLIF(
            tau_syn=1.0 / tau_syn_inv, tau_mem=tau_mem, r=np.ones(shape), w_in=1.0 / _alpha(tau_syn_inv, dt, integ),
            **common, **meta,
        )
    return nir.LIF(tau=tau_mem, r=np.ones(shape), **common, **meta)


def to_nir(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> nir.NIRGraph:
    """The NIR graph of a spikelab model (layers as in :mod:`spikelab.hardware.extract`).

    input_shape: one sample's shape without time and batch; required if the model starts with a
    convolution, else ``(in_features,)`` of the first Linear.
    """
    ops = list(walk(model))
    if input_shape is None:
        first = next((m for _, kind, m in ops if kind in ("dense", "conv")), None)
        if not isinstance(first, nn.Linear):
            raise ValueError("pass input_shape=(C, H, W): the model does not start with a Linear layer")
        input_shape = (first.in_features,)
    shape = tuple(int(s) for s in input_shape)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type=np.array(shape))}
    edges, prev = [], "input"
    dts = set()
    for name, kind, m in ops:
        x = torch.zeros((1, *shape))
        if kind == "dense":
            w = _np(m.weight)
            node = nir.Affine(weight=w, bias=_np(m.bias)) if m.bias is not None else nir.Linear(weight=w)
            shape = (m.out_features,)
        elif kind == "conv":
            if m.padding_mode != "zeros":
                raise UnsupportedLayerError(f"layer {name!r}: padding_mode {m.padding_mode!r} has no NIR equivalent")
            bias = _np(m.bias) if m.bias is not None else np.zeros(m.out_channels, np.float32)
            padding = m.padding if isinstance(m.padding, str) else tuple(m.padding)
            node = nir.Conv2d(input_shape=shape[1:], weight=_np(m.weight), stride=tuple(m.stride), padding=padding,
                              dilation=tuple(m.dilation), groups=m.groups, bias=bias,
                              metadata={"has_bias": m.bias is not None})
            shape = tuple(m(x).shape[1:])
        elif kind == "flatten":
            node = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)
            shape = (int(np.prod(shape)),)
        elif kind == "pool":
            k_, s_, p_ = (np.broadcast_to(np.asarray(v), (2,)).copy() for v in (m.kernel_size, m.stride, m.padding))
            if m.ceil_mode:
                raise UnsupportedLayerError(f"layer {name!r}: AvgPool2d(ceil_mode=True) has no NIR equivalent")
            if m.divisor_override == 1:
                node = nir.SumPool2d(kernel_size=k_, stride=s_, padding=p_)
            elif m.divisor_override is None and (not p_.any() or m.count_include_pad):
                node = nir.AvgPool2d(kernel_size=k_, stride=s_, padding=p_)
            else:
                raise UnsupportedLayerError(f"layer {name!r}: this AvgPool2d variant has no NIR equivalent")
            shape = tuple(m(x).shape[1:])
        else:  # neuron
            dts.add(m.dt)
            node = _neuron_node(m, shape)
        node_name = name.replace(".", "_")
        nodes[node_name] = node
        edges.append((prev, node_name))
        prev = node_name
    nodes["output"] = nir.Output(output_type=np.array(shape))
    edges.append((prev, "output"))
    if len(dts) > 1:
        raise UnsupportedLayerError(f"all neuron layers must share one time step dt; found {sorted(dts)}")
    meta = {"producer": "spikelab", "discretisation": "per step, input sampled once per step (see docs/hardware.md)"}
    if dts:
        meta["dt"] = float(dts.pop())
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def export_nir(model: nn.Module, path: str | os.PathLike, input_shape: tuple[int, ...] | None = None) -> Path:
    """Write the model's NIR graph to ``path`` (HDF5, ``nir.write``) atomically; returns the path."""
    path = Path(path)
    graph = to_nir(model, input_shape)
    with atomic_path(path) as tmp:
        nir.write(str(tmp), graph)
    return path


def _chain(graph: nir.NIRGraph) -> list[str]:
    """Node names from Input to Output; error unless the graph is a simple chain."""
    succ: dict[str, list[str]] = {}
    for a, b in graph.edges:
        succ.setdefault(a, []).append(b)
    inputs = [k for k, v in graph.nodes.items() if isinstance(v, nir.Input)]
    if len(inputs) != 1:
        raise UnsupportedLayerError(f"the NIR graph must have exactly one Input node, found {len(inputs)}")
    order, node = [], inputs[0]
    while True:
        order.append(node)
        nxt = succ.get(node, [])
        if len(nxt) > 1:
            raise UnsupportedLayerError(f"NIR node {node!r} feeds {len(nxt)} nodes; only chains are supported")
        if not nxt:
            break
        node = nxt[0]
        if node in order:
            raise UnsupportedLayerError(f"the NIR graph is recurrent at node {node!r}; only chains are supported")
    if len(order) != len(graph.nodes):
        missing = sorted(set(graph.nodes) - set(order))
        raise UnsupportedLayerError(f"NIR nodes {missing} are not on the Input -> Output chain")
    return order


def _meta(node: nir.NIRNode, key: str, default):
    """A metadata entry of a node or graph (strings come back from HDF5 as bytes)."""
    value = (node.metadata or {}).get(key, default)
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.ndarray):
        value = value.item()
    return value


def _uniform_or_tensor(a: np.ndarray, shape) -> float | torch.Tensor:
    a = np.broadcast_to(np.asarray(a, np.float64), shape)
    if a.size and np.all(a == a.flat[0]):
        return float(a.flat[0])
    return torch.from_numpy(a.copy()).to(torch.get_default_dtype())


def _neuron_module(name: str, node, dt: float) -> tuple[nn.Module, np.ndarray]:
    """spikelab neuron for a CubaLIF / LIF node, and the input factor to fold into the synapse."""
    shape = np.shape(node.v_threshold)
    integration = _meta(node, "integration", "euler")
    common = dict(
        v_leak=_uniform_or_tensor(node.v_leak, shape), v_th=_uniform_or_tensor(node.v_threshold, shape),
        v_reset=_uniform_or_tensor(node.v_reset, shape), dt=dt, integration=integration,
    )
    if isinstance(node, nir.CubaLIF):
        tau_syn_inv = 1.0 / np.asarray(node.tau_syn, np.float64)
        factor = _alpha(tau_syn_inv, dt, integration) * np.asarray(node.w_in, np.float64) * np.asarray(node.r, np.float64)
        module = LIF(tau_syn_inv=_uniform_or_tensor(tau_syn_inv, shape),
                     tau_mem_inv=_uniform_or_tensor(1.0 / np.asarray(node.tau_mem, np.float64), shape), **common)
    else:
        factor = np.broadcast_to(np.asarray(node.r, np.float64), shape)
        module = LIFBox(tau_mem_inv=_uniform_or_tensor(1.0 / np.asarray(node.tau, np.float64), shape), **common)
    factor = np.where(np.abs(factor - 1) <= UNIT_TOLERANCE, 1.0, factor)
    return module, factor


def _synapse_module(name: str, node, shape: tuple[int, ...]) -> tuple[nn.Module, tuple[int, ...]]:
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = np.asarray(node.weight)
        lin = nn.Linear(w.shape[1], w.shape[0], bias=isinstance(node, nir.Affine))
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            if isinstance(node, nir.Affine):
                lin.bias.copy_(torch.from_numpy(np.asarray(node.bias)))
        if int(np.prod(shape)) != w.shape[1]:
            raise DataError(f"NIR node {name!r}: weight takes {w.shape[1]} inputs but receives shape {shape}")
        return lin, (w.shape[0],)
    w = np.asarray(node.weight)
    padding = node.padding
    if not isinstance(padding, str):
        padding = tuple(int(p) for p in np.broadcast_to(padding, (2,)))
    # NIR's Conv2d always has a bias; spikelab's exporter notes when the model had none
    has_bias = bool(_meta(node, "has_bias", True)) or bool(np.any(node.bias))
    conv = nn.Conv2d(w.shape[1] * int(node.groups), w.shape[0], tuple(w.shape[2:]),
                     stride=tuple(np.broadcast_to(node.stride, (2,)).tolist()), padding=padding,
                     dilation=tuple(np.broadcast_to(node.dilation, (2,)).tolist()), groups=int(node.groups), bias=has_bias)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(w))
        if has_bias:
            conv.bias.copy_(torch.from_numpy(np.asarray(node.bias)))
    out = conv(torch.zeros((1, *shape))).shape[1:]
    return conv, tuple(out)


def _fold(name: str, synapse: nn.Module, factor: np.ndarray) -> None:
    """Multiply the synapse's outputs by ``factor`` (per neuron; per channel for convolutions)."""
    if np.all(factor == 1.0):
        return
    if isinstance(synapse, nn.Conv2d):
        per_channel = factor.reshape(factor.shape[0], -1)
        if not np.all(per_channel == per_channel[:, :1]):
            raise UnsupportedLayerError(f"NIR node {name!r}: w_in * r varies within a channel after a Conv2d")
        f = torch.from_numpy(per_channel[:, 0]).to(synapse.weight.dtype)
        with torch.no_grad():
            synapse.weight.mul_(f.view(-1, 1, 1, 1))
            if synapse.bias is not None:
                synapse.bias.mul_(f)
    else:
        f = torch.from_numpy(factor.reshape(-1)).to(synapse.weight.dtype)
        with torch.no_grad():
            synapse.weight.mul_(f.view(-1, 1))
            if synapse.bias is not None:
                synapse.bias.mul_(f)


def from_nir(graph: nir.NIRGraph | str | os.PathLike, dt: float | None = None) -> SequentialState:
    """A spikelab model from a NIR graph (or ``.nir`` file).

    dt: simulation time step in seconds; defaults to the graph's ``dt`` metadata (spikelab
    exports) or 1 ms. Unsupported nodes raise :class:`UnsupportedLayerError` naming the node.
    """
    if not isinstance(graph, nir.NIRGraph):
        path = Path(graph)
        if not path.is_file():
            raise FileNotFoundError(f"NIR file {path} not found")
        try:
            graph = nir.read(path)
        except Exception as exc:  # h5py and nir raise many types for a corrupt file
            raise DataError(f"{path} is not a readable NIR file: {type(exc).__name__}: {exc}") from exc
    dt = float(_meta(graph, "dt", 1e-3) if dt is None else dt)
    order = _chain(graph)
    shape = tuple(int(s) for s in np.asarray(graph.nodes[order[0]].input_type["input"]).reshape(-1))
    layers: list[nn.Module] = []
    pending: tuple[str, nn.Module] | None = None   # a synapse waiting for its neuron

    def flush():
        nonlocal pending
        if pending is not None:
            layers.append(TimeDistributed(pending[1]))
            pending = None

    for name in order[1:]:
        node = graph.nodes[name]
        if isinstance(node, nir.Output):
            break
        if isinstance(node, (nir.Affine, nir.Linear, nir.Conv2d)):
            flush()
            module, shape = _synapse_module(name, node, shape)
            pending = (name, module)
        elif isinstance(node, (nir.CubaLIF, nir.LIF)):
            neuron, factor = _neuron_module(name, node, dt)
            if pending is None:
                if not np.all(factor == 1.0):
                    raise UnsupportedLayerError(f"NIR node {name!r}: w_in * r != 1 needs a synapse before the neuron")
                layers.append(neuron)
                continue
            _fold(name, pending[1], factor)
            syn = pending[1]
            if isinstance(syn, nn.Linear):
                layer = SpikingLinear(syn.in_features, syn.out_features, neuron=neuron, bias=syn.bias is not None)
            else:
                layer = SpikingConv2d(syn.in_channels, syn.out_channels, syn.kernel_size, neuron=neuron, stride=syn.stride,
                                      padding=syn.padding, dilation=syn.dilation, groups=syn.groups,
                                      bias=syn.bias is not None)
            layer.synapse = syn
            layers.append(layer)
            pending = None
        elif isinstance(node, nir.Flatten):
            flush()
            layers.append(TimeDistributed(nn.Flatten()))
            shape = (int(np.prod(shape)),)
        elif isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
            flush()
            k, s, p = (tuple(int(v) for v in np.broadcast_to(a, (2,)))
                       for a in (node.kernel_size, node.stride, node.padding))
            pool = nn.AvgPool2d(k, s, p, divisor_override=1 if isinstance(node, nir.SumPool2d) else None)
            layers.append(TimeDistributed(pool))
            shape = tuple(pool(torch.zeros((1, *shape))).shape[1:])
        else:
            raise UnsupportedLayerError(f"NIR node {name!r} of type {type(node).__name__} is not supported by spikelab")
    flush()
    return SequentialState(*layers)
