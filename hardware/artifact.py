"""The export artifact: one ``.npz`` file holding a network, float and Loihi 2 fixed point.

Written by the main environment, read by the Lava environment (numpy only). The format is
specified in ``docs/hardware.md`` ("Export artifact"): a numpy ``.npz`` archive (no pickles)
with a JSON header under the key ``__meta__`` and one array per tensor, named
``stage<k>.<field>``. :func:`load` validates everything -- format, version, keys, dtypes,
shapes, finiteness and every Loihi 2 range -- and raises :class:`ArtifactError` naming the
problem, so a corrupt file can never run silently.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from spikelab.atomic import atomic_path
from spikelab.errors import DataError
from spikelab.hardware.network import (
    SIGN_MODES, FixedStage, FloatNeuron, Network, RangeError, Stage, Synapse, pair, check_fixed,
    conv_output_hw,
)

FORMAT = "spikelab-loihi2"
VERSION = 1


class ArtifactError(DataError):
    """A missing, unreadable, corrupt or inconsistent export artifact."""


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in the artifact header")


def to_arrays(net: Network) -> dict[str, np.ndarray]:
    """The artifact's content as a dict of arrays (header included under ``__meta__``)."""
    stages, arrays = [], {}
    for k, s in enumerate(net.stages):
        syn, n, f = s.synapse, s.neuron, s.fixed
        p = f"stage{k}."
        arrays[p + "weight"] = np.asarray(syn.weight, np.float64)
        if syn.bias is not None:
            arrays[p + "bias"] = np.asarray(syn.bias, np.float64)
        arrays[p + "v_leak"] = np.broadcast_to(np.asarray(n.v_leak, np.float64), syn.output_shape).copy()
        entry = {
            "name": s.name,
            "synapse": {
                "kind": syn.kind, "input_shape": list(syn.input_shape), "output_shape": list(syn.output_shape),
                "stride": list(syn.stride), "padding": list(syn.padding), "dilation": list(syn.dilation),
                "groups": syn.groups, "has_bias": syn.bias is not None,
            },
            "neuron": {
                "model": n.model, "tau_syn_inv": n.tau_syn_inv, "tau_mem_inv": n.tau_mem_inv,
                "a_syn": n.a_syn, "a_mem": n.a_mem, "v_th": n.v_th, "v_reset": n.v_reset,
                "integration": n.integration,
            },
            "fixed": None,
        }
        if f is not None:
            entry["fixed"] = {
                "weight_exp": f.weight_exp, "sign_mode": f.sign_mode, "du": f.du, "dv": f.dv, "vth": f.vth,
                "scale": f.scale, "weight_scale": f.weight_scale,
            }
            arrays[p + "fixed_weight"] = np.asarray(f.weight, np.int32)
            if f.bias is not None:
                arrays[p + "fixed_bias"] = np.asarray(f.bias, np.int32)
            for field in ("bias_mant", "bias_exp", "v_init"):
                arrays[p + field] = np.broadcast_to(np.asarray(getattr(f, field), np.int32), syn.output_shape).copy()
        stages.append(entry)
    header = {
        "format": FORMAT, "version": VERSION, "input_shape": list(net.input_shape), "dt": net.dt,
        "meta": net.meta, "stages": stages,
    }
    arrays["__meta__"] = np.frombuffer(json.dumps(header, default=_json_default).encode(), dtype=np.uint8)
    return arrays


def save(net: Network, path: str | os.PathLike) -> Path:
    """Write ``net`` to ``path`` (``.npz``) atomically (temporary file + rename); returns the path."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"artifact path must end with .npz, got {path}")
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **to_arrays(net))
    return path


def load(path: str | os.PathLike) -> Network:
    """Read and validate an artifact; :class:`ArtifactError` (or FileNotFoundError) if it is bad."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"export artifact {path} not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ArtifactError(f"{path} is not a readable spikelab Loihi artifact (.npz): {exc}") from exc
    try:
        return from_arrays(arrays)
    except (ArtifactError, RangeError) as exc:
        raise ArtifactError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ArtifactError(f"{path}: malformed artifact ({type(exc).__name__}: {exc})") from None


def _get(arrays: dict, key: str, *, integer: bool = False, shape=None, optional: bool = False):
    if key not in arrays:
        if optional:
            return None
        raise ArtifactError(f"array {key!r} is missing")
    a = arrays[key]
    if integer and not np.issubdtype(a.dtype, np.integer):
        raise ArtifactError(f"array {key!r} must hold integers, found {a.dtype}")
    if not integer and not np.issubdtype(a.dtype, np.floating):
        raise ArtifactError(f"array {key!r} must hold floats, found {a.dtype}")
    if not integer and not np.isfinite(a).all():
        raise ArtifactError(f"array {key!r} contains NaN or inf")
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise ArtifactError(f"array {key!r} has shape {a.shape}, expected {tuple(shape)}")
    return a


def _field(d: dict, key: str, kind, where: str):
    if key not in d:
        raise ArtifactError(f"{where}: field {key!r} is missing")
    value = d[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is not None and not isinstance(value, kind):
        raise ArtifactError(f"{where}: field {key!r} = {value!r} has the wrong type")
    return value


def from_arrays(arrays: dict[str, np.ndarray]) -> Network:
    """Inverse of :func:`to_arrays`, with full validation."""
    if "__meta__" not in arrays:
        raise ArtifactError("no '__meta__' header: not a spikelab Loihi artifact")
    try:
        header = json.loads(arrays["__meta__"].tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"the '__meta__' header is not valid JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ArtifactError(f"format is {header.get('format') if isinstance(header, dict) else None!r}, expected {FORMAT!r}")
    if header.get("version") != VERSION:
        raise ArtifactError(f"artifact version {header.get('version')!r} is not supported (this spikelab reads {VERSION})")
    stages = []
    raw_stages = _field(header, "stages", list, "header")
    if not raw_stages:
        raise ArtifactError("the network has no stages")
    for k, entry in enumerate(raw_stages):
        where = f"stage {k}"
        sd = _field(entry, "synapse", dict, where)
        nd = _field(entry, "neuron", dict, where)
        kind = _field(sd, "kind", str, where)
        if kind not in ("dense", "conv"):
            raise ArtifactError(f"{where}: synapse kind {kind!r} is not 'dense' or 'conv'")
        in_shape = tuple(_field(sd, "input_shape", list, where))
        out_shape = tuple(_field(sd, "output_shape", list, where))
        p = f"stage{k}."
        weight = _get(arrays, p + "weight")
        if kind == "dense" and weight.shape != (int(np.prod(out_shape)), int(np.prod(in_shape))):
            raise ArtifactError(f"{where}: dense weight shape {weight.shape} does not match {out_shape} x {in_shape}")
        if kind == "conv" and (weight.ndim != 4 or weight.shape[0] != out_shape[0] or len(in_shape) != 3):
            raise ArtifactError(f"{where}: conv weight shape {weight.shape} does not match {in_shape} -> {out_shape}")
        if kind == "conv":
            hw = conv_output_hw(in_shape[1:], weight.shape[2:], pair(sd.get("stride", 1)),
                                pair(sd.get("padding", 0)), pair(sd.get("dilation", 1)))
            if tuple(out_shape[1:]) != tuple(hw):
                raise ArtifactError(f"{where}: conv output shape {out_shape} does not match the geometry ({hw})")
        has_bias = _field(sd, "has_bias", bool, where)
        n_bias = weight.shape[0]
        bias = _get(arrays, p + "bias", shape=(n_bias,)) if has_bias else None
        syn = Synapse(kind, weight, bias, in_shape, out_shape, tuple(sd.get("stride", (1, 1))),
                      tuple(sd.get("padding", (0, 0))), tuple(sd.get("dilation", (1, 1))), int(sd.get("groups", 1)))
        model = _field(nd, "model", str, where)
        if model not in ("LIF", "LIFBox"):
            raise ArtifactError(f"{where}: neuron model {model!r} is not 'LIF' or 'LIFBox'")
        neuron = FloatNeuron(
            tau_syn_inv=None if model == "LIFBox" else _field(nd, "tau_syn_inv", float, where),
            tau_mem_inv=_field(nd, "tau_mem_inv", float, where),
            a_syn=_field(nd, "a_syn", float, where), a_mem=_field(nd, "a_mem", float, where),
            v_th=_field(nd, "v_th", float, where), v_reset=_field(nd, "v_reset", float, where),
            v_leak=_get(arrays, p + "v_leak", shape=out_shape),
            integration=_field(nd, "integration", str, where), model=model,
        )
        fixed = None
        fd = entry.get("fixed")
        if fd is not None:
            mode = _field(fd, "sign_mode", str, where)
            if mode not in SIGN_MODES:
                raise ArtifactError(f"{where}: sign_mode {mode!r} is not one of {SIGN_MODES}")
            fixed = FixedStage(
                weight=_get(arrays, p + "fixed_weight", integer=True, shape=weight.shape),
                bias=_get(arrays, p + "fixed_bias", integer=True, shape=(n_bias,)) if has_bias else None,
                weight_exp=_field(fd, "weight_exp", int, where), sign_mode=mode,
                du=_field(fd, "du", int, where), dv=_field(fd, "dv", int, where), vth=_field(fd, "vth", int, where),
                bias_mant=_get(arrays, p + "bias_mant", integer=True, shape=out_shape),
                bias_exp=_get(arrays, p + "bias_exp", integer=True, shape=out_shape),
                v_init=_get(arrays, p + "v_init", integer=True, shape=out_shape),
                scale=_field(fd, "scale", float, where), weight_scale=_field(fd, "weight_scale", float, where),
            )
        stage = Stage(_field(entry, "name", str, where), syn, neuron, fixed)
        if fixed is not None:
            check_fixed(stage)
        stages.append(stage)
    net = Network(tuple(_field(header, "input_shape", list, "header")), _field(header, "dt", float, "header"),
                  stages, header.get("meta", {}))
    net.check_chain()
    return net
