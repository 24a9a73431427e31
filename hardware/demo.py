"""``make demo``'s last stage: export the trained network to Loihi 2 fixed point and compare.

:func:`demo_stage` quantises a ``SequentialState`` of spiking layers, runs the float model and
the bit-accurate emulator on the same input spikes, and -- when the Lava environment exists --
runs Lava's fixed-point simulator on a subset and checks it against the emulator spike for spike.
"""

from __future__ import annotations

import torch

from spikelab.hardware import compare, emulator
from spikelab.hardware.extract import stage_spikes
from spikelab.hardware.lava_env import LavaUnavailable, run_lava
from spikelab.hardware.quantize import quantize_model


def demo_stage(model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor, lava_samples: int = 100) -> dict:
    """Export ``model`` to Loihi 2 fixed point and report float vs fixed point (vs Lava).

    model: trained ``SequentialState`` of spiking layers; inputs: spike trains (T, B, ...);
    labels: (B,) classes (readout = spike-count argmax of the last layer). Lava runs on the first
    ``lava_samples`` samples. Returns float/fixed accuracy, the fraction of spikes in the same
    step, and the Lava match rate and accuracy (None when Lava is unavailable, with the reason).
    """
    model = model.eval()
    net = quantize_model(model)
    x = inputs.detach().cpu().numpy()
    y = labels.detach().cpu().numpy()
    float_spikes = stage_spikes(model, net, inputs.detach())
    emu = emulator.run(net, x)
    result = {
        "float_accuracy": compare.accuracy(float_spikes[-1], y),
        "fixed_accuracy": compare.accuracy(emu.output, y),
        "same_step_fraction": compare.pooled(float_spikes, emu.spikes, compare.same_step_fraction),
        "weight_exponents": [s.fixed.weight_exp for s in net.stages],
        "emulator_steps_per_second": emu.steps_per_second,
        "lava_match_rate": None, "lava_accuracy": None, "lava_samples": 0, "lava_unavailable": None,
    }
    print("  exported to Loihi 2 fixed point: 8-bit weights, weight exponents "
          f"{result['weight_exponents']}, du/dv/vth per layer "
          f"{[(s.fixed.du, s.fixed.dv, s.fixed.vth) for s in net.stages]}")
    print(f"  accuracy float {100 * result['float_accuracy']:.1f} % -> fixed point (emulator) "
          f"{100 * result['fixed_accuracy']:.1f} %; {100 * result['same_step_fraction']:.1f} % of spikes in the same step")
    n = min(lava_samples, x.shape[1])
    try:
        lava = run_lava(net, x[:, :n])
    except LavaUnavailable as exc:
        result["lava_unavailable"] = str(exc)
        print(f"  Lava: not run -- the Lava environment is not available: {exc}")
        return result
    emu_subset = [s[:, :n] for s in emu.spikes]
    result.update(
        lava_match_rate=compare.pooled(lava.spikes, emu_subset, compare.match_rate),
        lava_accuracy=compare.accuracy(lava.spikes[-1], y[:n]), lava_samples=n,
    )
    exact = "bit-exact" if result["lava_match_rate"] == 1.0 else "NOT bit-exact"
    print(f"  Lava fixed point ({lava.info['run_config']}) on {n} samples: {100 * result['lava_match_rate']:.2f} % of "
          f"spike entries equal to the emulator ({exact}); accuracy {100 * result['lava_accuracy']:.1f} %")
    return result
