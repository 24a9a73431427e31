"""Hebbian principal-subspace learning: Oja's subspace rule with lateral anti-Hebbian terms.

``k`` subspace neurons with feed-forward weights ``H`` (k, n) see presynaptic activity
``x`` (B, n) and respond ``y = x H^T`` (B, k). The update

    dH = eta * y^T (x - y H) / B

is a Hebbian term ``y^T x`` minus a lateral (anti-Hebbian) term ``y^T y H`` through which the
subspace neurons decorrelate one another. Its fixed points are orthonormal bases of the top-k
principal subspace of ``E[x x^T]`` (Oja 1989). HLOP (Xiao et al., ICLR 2024) uses it to extract
the subspace of each layer's activity per task: rows learned on earlier tasks are *frozen* (they
still take part in the lateral term, so the *learning* rows converge to the principal subspace
of the activity left over after removing the frozen subspace).

Reference settings (HLOP code): 5 iterations per minibatch on the same batch, an exponential
moving average of the update with factor 0.9, updates clamped to +-10, eta 0.01 (0.001 for a
784-dimensional input layer).

* :func:`oja_subspace_step`: one pure update step on explicit tensors.
* :class:`HebbianSubspace`: a module holding ``H`` that grows by blocks of rows, freezes them,
  and projects vectors or weight gradients out of the frozen subspace.
"""

from __future__ import annotations

import torch
from torch import nn


def orthonormal_rows(k: int, n: int, generator: torch.Generator | None = None, dtype=None) -> torch.Tensor:
    """A (k, n) matrix with orthonormal rows drawn uniformly at random (QR of a Gaussian)."""
    if not 0 < k <= n:
        raise ValueError(f"cannot draw {k} orthonormal rows in dimension {n}")
    g = torch.randn(n, k, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(g)
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)  # unique, uniformly distributed (Haar)
    return q.T.to(dtype or torch.get_default_dtype()).contiguous()


def oja_subspace_step(
    weight: torch.Tensor,
    x: torch.Tensor,
    lr: float,
    *,
    n_frozen: int = 0,
    velocity: torch.Tensor | None = None,
    momentum: float = 0.9,
    clamp: float | None = 10.0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One step of Oja's subspace rule; returns ``(new_weight, new_velocity)``.

    Args:
        weight: H (k, n); rows ``[:n_frozen]`` are frozen (they shape the lateral term only).
        x: presynaptic activity (B, n).
        lr: learning rate eta.
        velocity: exponential average of past updates (k, n), or None for plain steps.
        momentum: averaging factor of ``velocity`` (update = m v + (1 - m) dH).
        clamp: elementwise bound on ``dH`` (None: no bound).
    """
    if x.dim() != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"x must be (B, {weight.shape[1]}); got {tuple(x.shape)}")
    y = x @ weight.T  # (B, k)
    delta = y.T @ (x - y @ weight) / x.shape[0]  # Hebbian minus lateral anti-Hebbian term
    if clamp is not None:
        delta = delta.clamp(-clamp, clamp)
    delta[:n_frozen] = 0
    if velocity is not None:
        velocity = momentum * velocity + (1 - momentum) * delta
        velocity[:n_frozen] = 0
        delta = velocity
    return weight + lr * delta, velocity


class HebbianSubspace(nn.Module):
    """Subspace neurons ``H`` (k, n) for presynaptic activity of dimension ``in_features``.

    Rows are added in blocks (:meth:`add_rows`) and frozen together (:meth:`freeze`); only the
    rows added since the last freeze learn (:meth:`update`). ``H`` and the update average are
    buffers, so ``state_dict()`` saves them and ``load_state_dict`` restores any number of rows.

    Args:
        in_features: dimension n of the presynaptic activity.
        lr: Hebbian learning rate eta.
        iterations: update steps per call of :meth:`update` (on the same batch).
        momentum: factor of the exponential average of updates (0 disables it).
        clamp: elementwise bound on each update (None: no bound).
    """

    def __init__(
        self, in_features: int, lr: float = 0.01, iterations: int = 5, momentum: float = 0.9, clamp: float | None = 10.0
    ) -> None:
        super().__init__()
        if in_features < 1:
            raise ValueError(f"in_features must be positive, got {in_features}")
        if lr <= 0 or iterations < 1 or not 0 <= momentum < 1:
            raise ValueError(f"need lr > 0, iterations >= 1, 0 <= momentum < 1; got {lr}, {iterations}, {momentum}")
        self.in_features = in_features
        self.lr, self.iterations, self.momentum, self.clamp = float(lr), int(iterations), float(momentum), clamp
        self.register_buffer("weight", torch.zeros(0, in_features))
        self.register_buffer("velocity", torch.zeros(0, in_features))
        self.n_frozen = 0

    @property
    def n_rows(self) -> int:
        """Total number of subspace neurons k."""
        return self.weight.shape[0]

    @property
    def n_learning(self) -> int:
        """Rows added since the last :meth:`freeze`."""
        return self.n_rows - self.n_frozen

    @property
    def frozen(self) -> torch.Tensor:
        """The frozen rows (n_frozen, n): the basis of the protected subspace."""
        return self.weight[: self.n_frozen]

    def add_rows(self, k: int, generator: torch.Generator | None = None) -> None:
        """Append ``k`` learning rows, initialised orthonormal within the new block."""
        if k < 0:
            raise ValueError(f"cannot add {k} rows")
        if self.n_rows + k > self.in_features:
            raise ValueError(
                f"a subspace of {self.n_rows + k} neurons exceeds the input dimension {self.in_features}"
            )
        if k == 0:
            return
        new = orthonormal_rows(k, self.in_features, generator, self.weight.dtype).to(self.weight.device)
        self.weight = torch.cat([self.weight, new])
        self.velocity = torch.cat([self.velocity, torch.zeros_like(new)])

    def keep_rows(self, k: int) -> None:
        """Keep the first ``k`` rows (drops learning rows only)."""
        if not self.n_frozen <= k <= self.n_rows:
            raise ValueError(f"can keep between {self.n_frozen} and {self.n_rows} rows, not {k}")
        self.weight = self.weight[:k].clone()
        self.velocity = self.velocity[:k].clone()

    def freeze(self) -> None:
        """Make every current row frozen (merge the learning block into the old subspace)."""
        self.n_frozen = self.n_rows
        self.velocity.zero_()

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Run :attr:`iterations` Hebbian steps of the learning rows on activity ``x`` (B, n)."""
        if self.n_learning == 0:
            return
        x = x.to(self.weight.dtype)
        w, v = self.weight, self.velocity if self.momentum > 0 else None
        for _ in range(self.iterations):
            w, v = oja_subspace_step(
                w, x, self.lr, n_frozen=self.n_frozen, velocity=v, momentum=self.momentum, clamp=self.clamp
            )
        self.weight = w
        if v is not None:
            self.velocity = v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Responses of all subspace neurons, ``y = x H^T``: (..., n) -> (..., k)."""
        return x @ self.weight.T

    def project_out(self, matrix: torch.Tensor) -> torch.Tensor:
        """``M (I - B^T B)`` for the frozen basis ``B``: removes the frozen subspace from the rows of ``M`` (m, n)."""
        basis = self.frozen
        if basis.shape[0] == 0:
            return matrix
        return matrix - (matrix @ basis.T) @ basis

    def get_extra_state(self) -> dict:
        return {"n_frozen": self.n_frozen}

    def set_extra_state(self, state: dict) -> None:
        self.n_frozen = int(state["n_frozen"])

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # H grows during training: take the saved number of rows before copying values.
        for name in ("weight", "velocity"):
            saved = state_dict.get(prefix + name)
            if saved is not None:
                setattr(self, name, torch.empty_like(saved, device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, rows={self.n_rows} (frozen {self.n_frozen}), lr={self.lr:g}"
