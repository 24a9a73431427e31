"""Oja's subspace rule with lateral anti-Hebbian terms (spikelab.plasticity.hebbian).

The reference is the eigendecomposition of the data covariance: data are drawn with a known
spectrum, and the learned rows must span the top-k eigenvectors (principal angles) and be
orthonormal.
"""

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles

from spikelab.plasticity.hebbian import HebbianSubspace, oja_subspace_step, orthonormal_rows

N = 24
SPECTRUM = np.array([10.0, 8.0, 6.0, 2.5, 2.2, 2.0] + [0.3] * (N - 6))  # gaps after 3 and 6


def _data(seed: int, n_samples: int):
    """Samples (n, N) drawn with covariance Q diag(SPECTRUM) Q^T (Q random orthogonal), and
    the eigenvectors of their sample covariance, by decreasing eigenvalue."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((N, N)))
    x = (rng.standard_normal((n_samples, N)) * np.sqrt(SPECTRUM)) @ q.T
    _, vectors = np.linalg.eigh(x.T @ x / n_samples)
    return torch.tensor(x, dtype=torch.float32), vectors[:, ::-1]


def _train(sub: HebbianSubspace, x: torch.Tensor, epochs: int, batch: int = 64) -> None:
    for _ in range(epochs):
        for start in range(0, len(x), batch):
            sub.update(x[start : start + batch])


def _max_angle_deg(rows: torch.Tensor, basis: np.ndarray) -> float:
    return float(np.degrees(subspace_angles(rows.double().numpy().T, basis)).max())


def test_learns_top_k_principal_subspace_orthonormal():
    x, q = _data(0, 4000)
    sub = HebbianSubspace(N, lr=0.01, iterations=5, momentum=0.9)
    sub.add_rows(3, torch.Generator().manual_seed(1))
    _train(sub, x, epochs=3)
    h = sub.weight
    assert _max_angle_deg(h, q[:, :3]) < 5.0
    assert torch.allclose(h @ h.T, torch.eye(3), atol=0.05)
    # the learned subspace is far from a random one (the check can fail)
    assert _max_angle_deg(orthonormal_rows(3, N, torch.Generator().manual_seed(2)), q[:, :3]) > 30.0


def test_new_rows_learn_the_next_components_and_frozen_rows_stay():
    x, q = _data(1, 4000)
    sub = HebbianSubspace(N, lr=0.01, iterations=5, momentum=0.9)
    sub.add_rows(3, torch.Generator().manual_seed(1))
    _train(sub, x, epochs=3)
    sub.freeze()
    old = sub.weight.clone()
    sub.add_rows(3, torch.Generator().manual_seed(2))
    assert (sub.n_frozen, sub.n_learning) == (3, 3)
    _train(sub, x, epochs=3)
    assert torch.equal(sub.weight[:3], old)  # frozen rows never change
    # the lateral term with the frozen rows drives the new rows to the principal subspace of
    # the activity left after removing the frozen subspace: components 4-6
    b = old.double().numpy()
    residual = x.double().numpy() @ (np.eye(N) - b.T @ b)
    _, vectors = np.linalg.eigh(residual.T @ residual)
    assert _max_angle_deg(sub.weight[3:], vectors[:, ::-1][:, :3]) < 3.0
    assert _max_angle_deg(sub.weight, q[:, :6]) < 5.0
    assert torch.allclose(sub.weight @ sub.weight.T, torch.eye(6), atol=0.06)


def test_step_matches_numpy_formula():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((5, 7)) * 0.3
    x = rng.standard_normal((11, 7))
    v = rng.standard_normal((5, 7)) * 0.1
    lr, m, n_frozen = 0.05, 0.9, 2
    y = x @ w.T
    delta = np.clip(y.T @ (x - y @ w) / len(x), -10, 10)
    delta[:n_frozen] = 0
    v_ref = m * v + (1 - m) * delta
    v_ref[:n_frozen] = 0
    w_ref = w + lr * v_ref
    t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    w_new, v_new = oja_subspace_step(t(w), t(x), lr, n_frozen=n_frozen, velocity=t(v), momentum=m, clamp=10.0)
    np.testing.assert_allclose(w_new.numpy(), w_ref, rtol=1e-12)
    np.testing.assert_allclose(v_new.numpy(), v_ref, rtol=1e-12)
    # without momentum: plain Oja step; frozen rows unchanged
    w_plain, v_none = oja_subspace_step(t(w), t(x), lr, n_frozen=n_frozen, clamp=None)
    y = x @ w.T
    ref = w + lr * np.vstack([np.zeros((2, 7)), (y.T @ (x - y @ w) / len(x))[2:]])
    assert v_none is None
    np.testing.assert_allclose(w_plain.numpy(), ref, rtol=1e-12)


def test_project_out_and_state_dict_roundtrip():
    sub = HebbianSubspace(10, lr=0.01)
    sub.add_rows(4, torch.Generator().manual_seed(0))
    sub.freeze()
    sub.add_rows(2, torch.Generator().manual_seed(1))
    m = torch.randn(3, 10)
    projected = sub.project_out(m)
    assert torch.allclose(projected @ sub.frozen.T, torch.zeros(3, 4), atol=1e-6)
    # the component outside the frozen subspace is kept
    assert torch.allclose(projected, m - m @ sub.frozen.T @ sub.frozen, atol=1e-6)

    fresh = HebbianSubspace(10, lr=0.01)
    fresh.load_state_dict(sub.state_dict())
    assert torch.equal(fresh.weight, sub.weight)
    assert (fresh.n_frozen, fresh.n_learning) == (4, 2)


def test_bad_sizes_raise():
    sub = HebbianSubspace(8)
    sub.add_rows(6)
    with pytest.raises(ValueError, match="exceeds the input dimension 8"):
        sub.add_rows(3)
    with pytest.raises(ValueError, match="x must be"):
        oja_subspace_step(torch.zeros(2, 8), torch.zeros(4, 5), 0.1)
    with pytest.raises(ValueError):
        HebbianSubspace(8, lr=-1.0)
