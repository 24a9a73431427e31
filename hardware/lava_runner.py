"""Run an exported network in Lava (lava-nc 0.10, Python 3.10, numpy; no torch).

Process graph per stage: ``Dense`` (or ``Conv``) -> ``LIF`` -> spike sink, fed by a
``RingBuffer`` spike source; a synaptic bias is a ``Dense`` block from an always-on source
switched on at step ``k`` for stage ``k`` (so it arrives with the first input). Modes:

* ``fixed``: the quantised network with ``Loihi2SimCfg(select_tag="fixed_pt")`` (Lava's
  bit-accurate models), or ``Loihi2HwCfg`` on a Loihi 2 system when Intel's Lava extension is
  importable (``--hardware auto``, the default).
* ``float``: the unquantised network with ``Loihi2SimCfg(select_tag="floating_pt")``
  (weights ``a_mem W``, ``du = a_syn``, ``dv = a_mem``, ``vth = v_th - v_reset``).

A batch of B samples of T steps runs as one Lava run of ``B T + L`` steps: samples are
concatenated and ``LIFReset`` sets u = v = 0 at the first step of each sample in each stage
(its window is shifted by the stage's delay). That is the rest state whenever
``v_leak == v_reset``; otherwise each sample runs separately and the state is reset by
setting the Vars (much slower). Results are aligned to the input steps, exactly like
:func:`spikelab.hardware.emulator.run`.

Command line (what the main environment calls)::

    python -m spikelab.hardware.lava_runner ARTIFACT INPUTS.npz OUTPUT.npz [--mode fixed|float] [--raw]

INPUTS.npz holds ``spikes`` (T, B, *input_shape) of 0/1; OUTPUT.npz gets ``stage<k>``
(T, B, *shape) uint8 per stage, optionally ``raw<k>`` (raw Lava time, (S, *shape)), and an
``info`` JSON (timings, steps, run configuration, Lava version).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spikelab.atomic import atomic_path
from spikelab.hardware import artifact
from spikelab.hardware.emulator import check_spikes
from spikelab.hardware.network import Network, Stage

MODES = ("fixed", "float")


def _recorder_classes():
    """A host-side spike recorder process (defined lazily: Lava is imported only when running).

    Lava's ``Var.get`` transfers one element per message (~40 us each), far too slow for spike
    trains of whole networks; the recorder keeps the spikes in its own process and writes them,
    bit-packed, to an ``.npy`` file at the last step. Its instances are mapped to the model
    through the run configuration's ``exception_proc_model_map`` (no model search needed).
    """
    from lava.magma.core.decorator import implements, requires
    from lava.magma.core.model.py.model import PyLoihiProcessModel
    from lava.magma.core.model.py.ports import PyInPort
    from lava.magma.core.model.py.type import LavaPyType
    from lava.magma.core.process.ports.ports import InPort
    from lava.magma.core.process.process import AbstractProcess
    from lava.magma.core.resources import CPU
    from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

    class SpikeRecorder(AbstractProcess):
        def __init__(self, *, shape: tuple, steps: int, path: str) -> None:
            super().__init__(shape=shape, steps=steps, path=path)
            self.a_in = InPort(shape=shape)

    @implements(proc=SpikeRecorder, protocol=LoihiProtocol)
    @requires(CPU)
    class PySpikeRecorderModel(PyLoihiProcessModel):
        a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)

        def __init__(self, proc_params) -> None:
            super().__init__(proc_params)
            self.steps, self.path = proc_params["steps"], proc_params["path"]
            self.buffer = np.zeros((self.steps, int(np.prod(proc_params["shape"]))), bool)

        def run_spk(self) -> None:
            self.buffer[self.time_step - 1] = self.a_in.recv().reshape(-1) != 0
            if self.time_step == self.steps:
                np.save(self.path + ".tmp.npy", np.packbits(self.buffer, axis=None))
                os.replace(self.path + ".tmp.npy", self.path)

    return SpikeRecorder, PySpikeRecorderModel


def to_lava_layout(x: np.ndarray, ndim: int) -> np.ndarray:
    """PyTorch population layout (..., C, H, W) -> Lava's (W, H, C, ...) for 3-D populations.

    ``x`` has ``ndim`` leading population axes followed by any trailing axes (e.g. time).
    """
    if ndim != 3:
        return x
    return np.moveaxis(x, (0, 1, 2), (2, 1, 0))


def lava_conv_weight(w: np.ndarray) -> np.ndarray:
    """PyTorch cross-correlation kernel (C_out, C_in, kH, kW) -> Lava's convolution kernel (C_out, kW, kH, C_in)."""
    return np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))


def lava_dense_weight(w: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """Reorder dense weight columns from PyTorch's (C, H, W) flattening to Lava's (W, H, C) flattening."""
    if len(input_shape) != 3:
        return w
    perm = np.arange(int(np.prod(input_shape))).reshape(input_shape).transpose(2, 1, 0).ravel()
    return np.ascontiguousarray(w[:, perm])


def _lava_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(reversed(shape)) if len(shape) == 3 else tuple(shape)


def _stage_values(stage: Stage, mode: str) -> dict:
    """Weights and neuron constants of a stage as Lava's processes take them."""
    syn, n, f = stage.synapse, stage.neuron, stage.fixed
    lava_out = _lava_shape(syn.output_shape)
    if mode == "fixed":
        weight, bias = f.weight.astype(np.int32), f.bias
        neuron = dict(du=int(f.du), dv=int(f.dv), vth=int(f.vth),
                      bias_mant=to_lava_layout(np.asarray(f.bias_mant, np.int32), len(lava_out)),
                      bias_exp=to_lava_layout(np.asarray(f.bias_exp, np.int32), len(lava_out)),
                      v=to_lava_layout(np.asarray(f.v_init, np.int32), len(lava_out)))
        weight_exp = int(f.weight_exp)
    else:
        weight = n.a_mem * np.asarray(syn.weight, np.float64)
        bias = None if syn.bias is None else n.a_mem * np.asarray(syn.bias, np.float64)
        offset = np.broadcast_to(np.asarray(n.v_leak, np.float64) - n.v_reset, syn.output_shape)
        neuron = dict(du=n.a_syn, dv=n.a_mem, vth=n.v_th - n.v_reset,
                      bias_mant=to_lava_layout(n.a_mem * offset, len(lava_out)), bias_exp=0,
                      v=to_lava_layout(offset.copy(), len(lava_out)))
        weight_exp = 0
    if syn.kind == "dense":
        weight = lava_dense_weight(weight, syn.input_shape)
    else:
        weight = lava_conv_weight(weight)
    bias_vec = syn.bias_vector(bias)
    if bias_vec is not None:
        bias_vec = to_lava_layout(bias_vec.reshape(syn.output_shape), len(lava_out)).reshape(-1, 1)
    return dict(weight=weight, bias=bias_vec, weight_exp=weight_exp, neuron=neuron, lava_out=lava_out)


def rest_is_zero(net: Network, mode: str) -> bool:
    """Whether every stage rests at v = 0 (then LIFReset can separate concatenated samples)."""
    if mode == "fixed":
        return all(not np.any(s.fixed.v_init) for s in net.stages)
    return all(not np.any(np.asarray(s.neuron.v_leak) - s.neuron.v_reset) for s in net.stages)


@dataclass
class LavaRun:
    """Aligned spikes per stage (T, B, *shape) and run information."""

    spikes: list[np.ndarray]
    raw: list[np.ndarray] | None
    info: dict


def _run_config(mode: str, hardware: str, exceptions: dict):
    from lava.magma.core.run_configs import Loihi2HwCfg, Loihi2SimCfg
    from lava.utils import loihi

    if mode == "fixed" and hardware != "never" and loihi.is_installed():
        return Loihi2HwCfg(exception_proc_model_map=exceptions), "Loihi2HwCfg"
    if hardware == "always":
        raise RuntimeError("--hardware always: Intel's Lava extension for Loihi 2 (lava-loihi) is not installed")
    tag = "fixed_pt" if mode == "fixed" else "floating_pt"
    return Loihi2SimCfg(select_tag=tag, exception_proc_model_map=exceptions), f"Loihi2SimCfg(select_tag={tag!r})"


def _input_columns(net: Network, spikes: np.ndarray, period: int, steps: int, dtype) -> np.ndarray:
    """Input spikes in Lava time and layout (*lava_input_shape, steps); sample s starts at s * period."""
    T, B = spikes.shape[:2]
    flat = np.zeros((steps, int(np.prod(net.input_shape))), dtype)
    for s in range(B):
        flat[s * period : s * period + T] = spikes[:, s].reshape(T, -1)
    return to_lava_layout(flat.T.reshape(*net.input_shape, steps), len(net.input_shape))


def run(net: Network, spikes: np.ndarray, mode: str = "fixed", hardware: str = "auto", keep_raw: bool = False) -> LavaRun:
    """Build the Lava process graph of ``net``, run the input spikes (T, B, *input_shape), return spikes."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF, LIFReset
    from lava.utils.weightutils import SignMode

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "fixed" and not net.quantised:
        raise ValueError("the artifact holds no fixed-point network; quantise it or use --mode float")
    spikes = check_spikes(spikes, net.input_shape)
    T, B = spikes.shape[:2]
    L = len(net.stages)
    concatenated = rest_is_zero(net, mode)
    period = T if concatenated else T + L
    steps = B * T + L if concatenated else B * period
    dtype = np.int32 if mode == "fixed" else np.float64
    SpikeRecorder, RecorderModel = _recorder_classes()

    build_start = time.perf_counter()
    source = Source(data=_input_columns(net, spikes, period, steps, dtype))
    prev, prev_shape = source.s_out, tuple(net.input_shape)
    lifs, syns, recorders, rests = [], [], [], []
    tmp = tempfile.TemporaryDirectory(prefix="spikelab-lava-")
    for k, stage in enumerate(net.stages):
        v = _stage_values(stage, mode)
        sign = {} if mode == "float" else {"sign_mode": SignMode[stage.fixed.sign_mode.upper()]}
        if stage.synapse.kind == "dense":
            syn = Dense(weights=v["weight"], weight_exp=v["weight_exp"], **sign)
            (prev.flatten() if len(prev_shape) > 1 else prev).connect(syn.s_in)
        else:
            sp = stage.synapse
            syn = Conv(weight=v["weight"], weight_exp=0, input_shape=_lava_shape(sp.input_shape),
                       padding=sp.padding[::-1], stride=sp.stride[::-1], dilation=sp.dilation[::-1], groups=sp.groups)
            prev.connect(syn.s_in)
        shape = v["lava_out"]
        rests.append(np.broadcast_to(v["neuron"]["v"], shape).astype(np.float64))
        if concatenated:
            lif = LIFReset(shape=shape, u=0, reset_interval=period, reset_offset=(k + 2) % period, **v["neuron"])
        else:
            lif = LIF(shape=shape, u=0, **v["neuron"])
        syn.a_out.connect(lif.a_in)
        syns.append(syn)
        if v["bias"] is not None:
            gate = np.zeros((1, steps if concatenated else period), dtype)
            gate[0, k:] = 1
            bsrc = Source(data=gate)
            bden = Dense(weights=v["bias"].astype(dtype), weight_exp=v["weight_exp"], **sign)
            bsrc.s_out.connect(bden.s_in)
            (bden.a_out.reshape(shape) if len(shape) > 1 else bden.a_out).connect(lif.a_in)
            syns.append(bden)
        recorder = SpikeRecorder(shape=shape, steps=steps, path=os.path.join(tmp.name, f"stage{k}.npy"))
        lif.s_out.connect(recorder.a_in)
        lifs.append(lif)
        recorders.append(recorder)
        prev, prev_shape = lif.s_out, stage.synapse.output_shape

    cfg, cfg_name = _run_config(mode, hardware, {r: RecorderModel for r in recorders})
    run_seconds = 0.0
    try:
        lifs[-1].create_runtime(run_cfg=cfg)
        build_seconds = time.perf_counter() - build_start
        for s in range(1 if concatenated else B):
            if s > 0:   # per-sample mode: back to the rest state
                for lif, rest in zip(lifs, rests):
                    lif.u.set(np.zeros(lif.u.shape))
                    lif.v.set(rest.copy())
                for syn in syns:
                    buf = syn.a_buf if isinstance(syn, Conv) else syn.a_buff
                    buf.set(np.zeros(buf.shape))
            start = time.perf_counter()
            lifs[-1].run(condition=RunSteps(num_steps=steps if concatenated else period), run_cfg=cfg)
            run_seconds += time.perf_counter() - start
    finally:
        lifs[-1].stop()

    aligned, raw_out = [], []
    with tmp:
        for k, stage in enumerate(net.stages):
            out_shape = stage.synapse.output_shape
            lava_shape = _lava_shape(out_shape)
            n = int(np.prod(out_shape))
            bits = np.unpackbits(np.load(os.path.join(tmp.name, f"stage{k}.npy")), count=steps * n)
            data = bits.reshape(steps, *lava_shape)
            if len(out_shape) == 3:
                data = data.transpose(0, 3, 2, 1)                          # (steps, C, H, W)
            data = np.ascontiguousarray(data)
            raw_out.append(data)
            aligned.append(np.stack([data[s * period + k + 1 : s * period + k + 1 + T] for s in range(B)], axis=1))
    info = {
        "mode": mode, "run_config": cfg_name, "protocol": "concatenated+LIFReset" if concatenated else "per-sample",
        "steps": steps, "T": T, "batch": B, "build_seconds": build_seconds, "run_seconds": run_seconds,
        "steps_per_second": steps / run_seconds if run_seconds > 0 else None, "lava_version": _lava_version(),
    }
    return LavaRun(aligned, raw_out if keep_raw else None, info)


def _lava_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lava-nc")
    except PackageNotFoundError:
        return None


def _save(path: Path, result: LavaRun) -> None:
    arrays = {f"stage{k}": s for k, s in enumerate(result.spikes)}
    if result.raw is not None:
        arrays.update({f"raw{k}": r for k, r in enumerate(result.raw)})
    arrays["info"] = np.frombuffer(json.dumps(result.info).encode(), dtype=np.uint8)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spikelab.hardware.lava_runner", description=__doc__.split("\n")[0])
    parser.add_argument("artifact", type=Path, help="export artifact (.npz) written by spikelab")
    parser.add_argument("inputs", type=Path, help=".npz with 'spikes' (T, B, *input_shape) of 0/1")
    parser.add_argument("output", type=Path, help=".npz to write the spikes and run information to")
    parser.add_argument("--mode", choices=MODES, default="fixed", help="fixed point (bit-accurate) or floating point")
    parser.add_argument("--hardware", choices=("auto", "never", "always"), default="auto",
                        help="use Loihi2HwCfg when Intel's Lava extension is installed (auto), never, or require it")
    parser.add_argument("--raw", action="store_true", help="also store the raw Lava-time spikes of every stage")
    args = parser.parse_args(argv)
    try:
        net = artifact.load(args.artifact)
        if not args.inputs.is_file():
            raise FileNotFoundError(f"input spikes {args.inputs} not found")
        with np.load(args.inputs, allow_pickle=False) as data:
            if "spikes" not in data.files:
                raise ValueError(f"{args.inputs} has no 'spikes' array")
            spikes = data["spikes"]
        result = run(net, spikes, args.mode, args.hardware, keep_raw=args.raw)
        _save(args.output, result)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"lava_runner: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
