"""EWC: elastic weight consolidation (Kirkpatrick et al., PNAS 2017).

After each task the diagonal of the empirical Fisher information,
``F_i = E_(x, y) [(d log p(y | x) / d theta_i)^2]``, is estimated from per-sample gradients on
training samples, and later training adds the penalty ``lambda / 2 * sum_i F_i (theta_i -
theta*_i)^2`` per earlier task (``mode="separate"``), or one penalty with the running Fisher
``F <- decay F + F_t`` anchored at the latest parameters (``mode="online"``, Schwarz et al. 2018).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spikelab.continual.strategy import Plugin


def empirical_fisher(strategy, experience, n_samples: int) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher of the trainable parameters from ``n_samples`` per-sample gradients."""
    model = strategy.model
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    index = torch.randperm(len(experience), generator=strategy.generator)[: min(n_samples, len(experience))]
    was_training = model.training
    model.eval()
    for i in index.tolist():
        x, y = experience.batch(torch.tensor([i]))
        model.zero_grad(set_to_none=True)
        loss = F.cross_entropy(strategy.logits(x, torch.full_like(y, experience.task_label)), y)
        loss.backward()
        for n, p in params.items():
            if p.grad is not None:
                fisher[n] += p.grad.detach() ** 2
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return {n: f / len(index) for n, f in fisher.items()}


def ewc_penalty(model: nn.Module, anchors: list[tuple[dict, dict]]) -> torch.Tensor:
    """``sum over (fisher, params*) of sum_i F_i (theta_i - theta*_i)^2`` (without lambda / 2)."""
    current = dict(model.named_parameters())
    total = None
    for fisher, star in anchors:
        for n, f in fisher.items():
            term = (f * (current[n] - star[n]).pow(2)).sum()
            total = term if total is None else total + term
    return total if total is not None else torch.zeros(())


class EWC(Plugin):
    """The EWC method as a strategy plugin.

    Args:
        ewc_lambda: penalty strength lambda.
        mode: "separate" (one penalty per earlier task) or "online" (one running penalty).
        decay: factor on the running Fisher in online mode.
        n_samples: per-sample gradients used to estimate each task's Fisher.
    """

    def __init__(self, ewc_lambda: float, *, mode: str = "separate", decay: float = 1.0, n_samples: int = 500) -> None:
        if ewc_lambda < 0:
            raise ValueError(f"ewc lambda must be >= 0, got {ewc_lambda}")
        if mode not in ("separate", "online"):
            raise ValueError(f"ewc mode {mode!r}: choose 'separate' or 'online'")
        self.ewc_lambda, self.mode, self.decay, self.n_samples = float(ewc_lambda), mode, float(decay), n_samples
        self.anchors: list[tuple[dict, dict]] = []

    def before_backward(self, strategy) -> None:
        if self.anchors and self.ewc_lambda > 0:
            strategy.loss = strategy.loss + 0.5 * self.ewc_lambda * ewc_penalty(strategy.model, self.anchors)

    def after_training_exp(self, strategy) -> None:
        fisher = empirical_fisher(strategy, strategy.experience, self.n_samples)
        star = {n: p.detach().clone() for n, p in strategy.model.named_parameters() if n in fisher}
        if self.mode == "online" and self.anchors:
            old = self.anchors[0][0]
            fisher = {n: self.decay * old[n] + f for n, f in fisher.items()}
            self.anchors = []
        self.anchors.append((fisher, star))

    def state_dict(self) -> dict:
        return {"anchors": self.anchors}

    def load_state_dict(self, state: dict) -> None:
        self.anchors = state["anchors"]
