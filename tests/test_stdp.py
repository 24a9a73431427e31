"""STDP, adaptive threshold and weight normalisation against independent step-by-step numpy loops.

The references below update every trace of every synapse at every step (dense, the textbook
form); spikelab's rule is event-driven (traces evaluated only at events, per-synapse delays).
Both must give the same weights at every step.
"""

import numpy as np
import pytest
import torch

from spikelab.plasticity.stdp import (
    STDP, STDPParameters, ThresholdParameters, adaptive_threshold, normalise_input_weights, stdp_sequence,
)


def dense_stdp_reference(pre, post, w, delays, p, dt):
    """Plain per-step loop: decay every trace, then presynaptic arrivals, then postsynaptic spikes."""
    T, n_in = pre.shape
    n_out = post.shape[1]
    w = w.copy()
    x_pre = np.zeros((n_in, n_out))
    post1, post2 = np.zeros(n_out), np.zeros(n_out)
    trajectory = []
    for t in range(T):
        x_pre *= np.exp(-dt / p.tau_pre)
        post1 *= np.exp(-dt / p.tau_post1)
        post2 *= np.exp(-dt / p.tau_post2)
        for i in range(n_in):
            for j in range(n_out):
                t_spike = t - delays[i, j]
                if t_spike >= 0 and pre[t_spike, i]:
                    x_pre[i, j] = 1.0
                    w[i, j] = np.clip(w[i, j] + p.nu_pre * post1[j], p.w_min, p.w_max)
        for j in range(n_out):
            if post[t, j]:
                w[:, j] = np.clip(w[:, j] + p.nu_post * x_pre[:, j] * post2[j], p.w_min, p.w_max)
                post1[j] = 1.0
                post2[j] = 1.0
        trajectory.append(w.copy())
    return np.array(trajectory)


@pytest.mark.parametrize(
    "p",
    [
        STDPParameters(),  # ICRA 2023 code: +nu_pre
        STDPParameters(nu_pre=-1e-4),  # Diehl & Cook 2015: depression on presynaptic arrival
        STDPParameters(nu_pre=0.02, nu_post=0.2, w_max=0.6),  # large rates so that the bounds clip
    ],
)
def test_event_driven_stdp_matches_dense_loop_at_every_step(p):
    rng = np.random.default_rng(0)
    T, n_in, n_out, dt = 160, 12, 5, 0.5
    pre = rng.random((T, n_in)) < 0.08
    post = rng.random((T, n_out)) < 0.05
    post[10, :] = pre[10, :n_out] = True  # coincident pre and post spikes in one step
    w0 = rng.random((n_in, n_out)) * 0.5
    delays = rng.integers(0, 21, (n_in, n_out))
    expected = dense_stdp_reference(pre, post, w0, delays, p, dt)
    assert np.abs(expected[-1] - w0).max() > 1e-3  # the rule changed the weights
    for t in (1, 11, 40, 97, T):
        got, _ = stdp_sequence(pre[:t, None], post[:t, None], w0[None], p, dt, delays)
        np.testing.assert_allclose(got[0], expected[t - 1], rtol=0, atol=1e-13)


def test_stdp_state_continues_traces_across_calls():
    rng = np.random.default_rng(1)
    pre = rng.random((120, 2, 6)) < 0.1
    post = rng.random((120, 2, 3)) < 0.08
    w0 = rng.random((2, 6, 3))
    whole, _ = stdp_sequence(pre, post, w0)
    first, state = stdp_sequence(pre[:50], post[:50], w0)
    second, _ = stdp_sequence(pre[50:], post[50:], first, state=state)
    np.testing.assert_allclose(second, whole, rtol=0, atol=1e-14)
    for b in range(2):  # every sample of the batch is independent
        alone, _ = stdp_sequence(pre[:, b : b + 1], post[:, b : b + 1], w0[b : b + 1])
        np.testing.assert_array_equal(alone[0], whole[b])


def test_stdp_module_wraps_tensors_and_checks_input():
    rng = np.random.default_rng(2)
    pre = torch.as_tensor(rng.random((40, 1, 4)) < 0.2, dtype=torch.float32)
    post = torch.as_tensor(rng.random((40, 1, 2)) < 0.1, dtype=torch.float32)
    w = torch.rand(1, 4, 2, dtype=torch.float64)
    new_w, _ = STDP()(pre, post, w)
    expected, _ = stdp_sequence(pre.numpy(), post.numpy(), w.numpy())
    assert new_w.dtype == w.dtype and torch.equal(new_w, torch.as_tensor(expected))
    with pytest.raises(ValueError, match="shapes do not agree"):
        STDP()(pre, post, torch.rand(1, 5, 2))
    with pytest.raises(ValueError, match="time constants"):
        STDP(STDPParameters(tau_pre=0.0))


def test_adaptive_threshold_matches_loop():
    rng = np.random.default_rng(3)
    z = rng.random((300, 7)) < 0.1
    p, dt = ThresholdParameters(theta_plus=0.05, tau_theta=50.0), 0.5  # fast decay so that it matters
    theta, expected = np.full(7, 20.0), []
    for t in range(300):
        theta = theta - dt * theta / p.tau_theta  # forward Euler decay (state update)
        theta = theta + p.theta_plus * z[t]  # jump at the reset
        expected.append(theta.copy())
    np.testing.assert_allclose(adaptive_threshold(z, np.full(7, 20.0), p, dt), expected, rtol=1e-14)


def test_normalisation_matches_numpy():
    rng = np.random.default_rng(4)
    w = rng.random((3, 784, 40))
    w[1, :, 5] = 0.0  # a neuron without input weights stays at zero
    got = normalise_input_weights(w, 78.0)
    np.testing.assert_allclose(got.sum(axis=1)[[0, 2]], 78.0, rtol=1e-12)
    expected = w * np.where(w.sum(axis=1, keepdims=True) > 0, 78.0 / np.maximum(w.sum(axis=1, keepdims=True), 1e-300), 0)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert np.all(got[1, :, 5] == 0)
