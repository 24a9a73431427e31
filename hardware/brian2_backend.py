"""Brian2 reference backend: simulate an exported float network in Brian2 and compare spikes.

Each stage is a ``NeuronGroup`` integrating spikelab's (Norse's) current-based LIF with
Brian2's own integrator -- ``euler`` for forward-Euler models, ``exponential_euler`` for
``integration="exact"`` -- ::

    dv/dt = tau_mem_inv ((v_leak - v) + I)      dI/dt = -tau_syn_inv I
    threshold v > v_th,  reset v = v_reset

and every synapse is a ``Synapses`` object with ``on_pre: I += w`` (a ``LIFBox`` stage has
``I`` as a plain variable cleared after each update). Brian2 delivers a spike in the step after
it was emitted, so stage ``k`` sees input step ``t`` at step ``t + k + 1`` -- the same per-stage
delay as Loihi; results are aligned back to the input steps. A batch runs as B independent
copies of the network in one Brian2 ``Network`` (numpy code generation, no compiler needed).
"""

from __future__ import annotations

import numpy as np

from spikelab.hardware.emulator import check_spikes
from spikelab.hardware.network import Network


def _import_brian2():
    try:
        import brian2
    except Exception as exc:  # broken installs raise AttributeError etc., not only ImportError
        raise ImportError(f"Brian2 is not usable in this environment ({type(exc).__name__}: {exc}); "
                          "install it with `pip install brian2`") from exc
    return brian2


def run(net: Network, spikes: np.ndarray) -> list[np.ndarray]:
    """Simulate the float network on input spikes (T, B, *input_shape); spikes per stage (T, B, *shape)."""
    b2 = _import_brian2()
    spikes = check_spikes(spikes, net.input_shape)
    T, B = spikes.shape[:2]
    L = len(net.stages)
    b2.prefs.codegen.target = "numpy"
    dt = net.dt * b2.second
    steps, samples, neurons = np.nonzero(spikes.reshape(T, B, -1))
    n_in = int(np.prod(net.input_shape))
    source = b2.SpikeGeneratorGroup(B * n_in, samples * n_in + neurons, steps * dt, dt=dt, name="input")
    objects: list = [source]
    monitors = []
    pre, pre_n = source, n_in
    for k, stage in enumerate(net.stages):
        syn, n = stage.synapse, stage.neuron
        n_out = syn.n_out
        box = n.model == "LIFBox"
        eqs = "dv/dt = tau_mem_inv * ((v_leak - v) + I) : 1\nv_leak : 1\nb_syn : 1\n"
        eqs += "I : 1\n" if box else "dI/dt = -tau_syn_inv * I : 1\n"
        namespace = {"tau_mem_inv": n.tau_mem_inv * b2.Hz, "v_th": n.v_th, "v_reset": n.v_reset, "t_on": (k - 0.5) * dt}
        if not box:
            namespace["tau_syn_inv"] = n.tau_syn_inv * b2.Hz
        method = "euler" if n.integration == "euler" else "exponential_euler"
        group = b2.NeuronGroup(B * n_out, eqs, threshold="v > v_th", reset="v = v_reset", method=method,
                               dt=dt, namespace=namespace, name=f"stage{k}")
        v_leak = np.tile(np.broadcast_to(n.v_leak, syn.output_shape).reshape(-1), B)
        group.v_leak = v_leak
        group.v = v_leak
        group.I = 0
        bias = syn.bias_vector()
        if bias is not None:
            group.b_syn = np.tile(bias, B)
            group.run_regularly("I += b_syn * int(t > t_on)", when="synapses", name=f"bias{k}")
        if box:
            group.run_regularly("I = 0", when="after_groups", name=f"clear{k}")
        mat = syn.matrix()
        rows, cols = np.nonzero(mat) if syn.kind == "dense" else mat.nonzero()
        weights = np.asarray(mat[rows, cols]).ravel()
        synapses = b2.Synapses(pre, group, model="w : 1", on_pre="I_post += w", dt=dt, name=f"synapses{k}")
        offs = np.repeat(np.arange(B), len(rows))
        synapses.connect(i=np.tile(cols, B) + offs * pre_n, j=np.tile(rows, B) + offs * n_out)
        synapses.w = np.tile(weights, B)
        monitor = b2.SpikeMonitor(group, name=f"monitor{k}")
        objects += [group, synapses, monitor]
        monitors.append(monitor)
        pre, pre_n = group, n_out
    network = b2.Network(*objects)
    network.run((T + L) * dt, namespace={})
    out = []
    for k, (stage, monitor) in enumerate(zip(net.stages, monitors)):
        n_out = stage.synapse.n_out
        raw = np.zeros((T + L, B * n_out), np.uint8)
        step = np.rint(np.asarray(monitor.t / dt)).astype(int)
        raw[step, np.asarray(monitor.i)] = 1
        aligned = raw[k + 1 : k + 1 + T].reshape(T, B, *stage.synapse.output_shape)
        out.append(aligned)
    return out
