"""A continual-learning training loop with plugins, in the style of Avalanche.

:class:`Strategy` trains a model on one experience at a time (``strategy.train(exp)``) and
measures accuracy (``strategy.evaluate(exp)``). Methods are :class:`Plugin` objects whose
callbacks run at fixed points of the loop, with the strategy as argument (Avalanche's names)::

    before_training_exp -> [before_training_epoch -> [before_forward -> forward
        -> before_backward -> backward -> after_backward -> optimizer step -> after_update]*
        -> after_training_epoch]* -> after_training_exp

During a minibatch the plugins see ``strategy.mb_x`` (B, D) inputs before encoding,
``strategy.mb_y`` labels, ``strategy.mb_task`` task labels, ``strategy.loss`` (add penalties in
``before_backward``) and ``strategy.model``; ``strategy.experience`` is the experience being
trained and ``strategy.training_exp_counter`` how many were trained before it.

Two training modes: ``"bptt"`` (surrogate-gradient back-propagation through time) and
``"rate"`` (DSR-style gradients through firing rates, :mod:`spikelab.continual.rate`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from spikelab.continual.rate import RateGradients
from spikelab.data.continual import Experience

TRAINING_MODES = ("bptt", "rate")


class Plugin:
    """Base class of continual-learning methods: override the callbacks you need.

    ``state_dict`` / ``load_state_dict`` carry what a plugin must remember across tasks (for
    checkpoints); the defaults hold nothing.
    """

    def before_training_exp(self, strategy: "Strategy") -> None: ...
    def before_training_epoch(self, strategy: "Strategy") -> None: ...
    def before_forward(self, strategy: "Strategy") -> None: ...
    def before_backward(self, strategy: "Strategy") -> None: ...
    def after_backward(self, strategy: "Strategy") -> None: ...
    def after_update(self, strategy: "Strategy") -> None: ...
    def after_training_epoch(self, strategy: "Strategy") -> None: ...
    def after_training_exp(self, strategy: "Strategy") -> None: ...

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None: ...


class DirectEncoder(nn.Module):
    """Analog input repeated over ``T`` steps (the HLOP reference's encoding): (B, D) -> (T, B, D).

    The input is standardised first: ``(x - mean) / std``.
    """

    def __init__(self, seq_length: int, mean: float = 0.0, std: float = 1.0) -> None:
        super().__init__()
        if seq_length < 1 or std <= 0:
            raise ValueError(f"need seq_length >= 1 and std > 0; got {seq_length}, {std}")
        self.seq_length, self.mean, self.std = seq_length, float(mean), float(std)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = (x - self.mean) / self.std
        return x.unsqueeze(0).expand(self.seq_length, *x.shape)


class CurrentEncoder(nn.Module):
    """Deterministic spikes: ``gain * x`` is a constant current into :class:`LIFBox` encoding neurons.

    Wraps :class:`spikelab.encoding.ConstantCurrentEncoder` (regular spike trains, stronger
    inputs fire more often) with the ``(x, generator)`` call of the other encoders.
    """

    def __init__(self, seq_length: int, gain: float = 3.0, dt: float = 1e-3) -> None:
        super().__init__()
        from spikelab.encoding import ConstantCurrentEncoder

        self.gain = float(gain)
        self.encoder = ConstantCurrentEncoder(seq_length, dt=dt)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.encoder(self.gain * x)


class Strategy:
    """Train ``model`` on experiences with SGD-type optimisers and a list of plugins.

    Args:
        model: maps (T, B, D) input and task labels to logits (e.g. :class:`ContinualSNN`).
        encoder: maps (B, D) inputs in [0, 1] (and a generator) to (T, B, D).
        training: "bptt" or "rate".
        lr, momentum, weight_decay, optimizer: optimiser settings ("sgd" or "adam").
        batch_size, epochs: per experience.
        eval_batch_size: minibatch size for evaluation.
        plugins: the continual-learning method(s).
        generator: source of the training's randomness (shuffling, encoding, plugins).
        eval_seed: seed of the encoding noise during evaluation.
        progress: show tqdm bars per epoch.
    """

    def __init__(
        self,
        model: nn.Module,
        encoder: nn.Module,
        *,
        training: str = "rate",
        lr: float = 0.1,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        optimizer: str = "sgd",
        batch_size: int = 64,
        epochs: int = 1,
        eval_batch_size: int = 1000,
        plugins: list[Plugin] | tuple = (),
        generator: torch.Generator | None = None,
        eval_seed: int = 0,
        progress: bool = True,
    ) -> None:
        if training not in TRAINING_MODES:
            raise ValueError(f"training={training!r}: choose one of {TRAINING_MODES}")
        if optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer={optimizer!r}: choose 'sgd' or 'adam'")
        self.model, self.encoder, self.training_mode = model, encoder, training
        self.lr, self.momentum, self.weight_decay, self.optimizer_name = lr, momentum, weight_decay, optimizer
        self.batch_size, self.epochs, self.eval_batch_size = batch_size, epochs, eval_batch_size
        self.plugins = list(plugins)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.eval_seed = eval_seed
        self.progress = progress
        self.training_exp_counter = 0
        self.experience: Experience | None = None
        self.is_training = False
        self.mb_x = self.mb_y = self.mb_task = self.loss = None
        self.optimizer: torch.optim.Optimizer | None = None

    def _call(self, event: str) -> None:
        for p in self.plugins:
            getattr(p, event)(self)

    def make_optimizer(self) -> torch.optim.Optimizer:
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.optimizer_name == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)

    def logits(self, x: torch.Tensor, task: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Encode ``x`` (B, D) and run the model; gradients through rates in "rate" mode."""
        seq = self.encoder(x, generator=self.generator if generator is None else generator)
        if self.training_mode == "rate" and torch.is_grad_enabled():
            with RateGradients(self.model):
                return self.model(seq, task)
        return self.model(seq, task)

    def train(self, experiences: Experience | list[Experience], description: str = "") -> dict:
        """Train on one experience (or several at once, for joint training); returns loss and accuracy."""
        exps = [experiences] if isinstance(experiences, Experience) else list(experiences)
        self.experience = exps[-1]
        self.is_training = True
        self.model.train()
        self._call("before_training_exp")
        self.optimizer = self.make_optimizer()
        sizes = torch.tensor([len(e) for e in exps])
        offsets = torch.cumsum(sizes, 0) - sizes
        total = int(sizes.sum())
        seen = correct = 0
        loss_sum = 0.0
        for epoch in range(self.epochs):
            self.model.train()
            self._call("before_training_epoch")
            order = torch.randperm(total, generator=self.generator)
            bar = tqdm(
                range(0, total, self.batch_size), disable=not self.progress, leave=False, unit="batch",
                desc=f"{description} epoch {epoch + 1}/{self.epochs}".strip(),
            )
            for start in bar:
                self.mb_x, self.mb_y, self.mb_task = gather(exps, offsets, order[start : start + self.batch_size])
                self._call("before_forward")
                out = self.logits(self.mb_x, self.mb_task)
                self.loss = F.cross_entropy(out, self.mb_y)
                n = len(self.mb_y)
                loss_sum += float(self.loss.detach()) * n
                correct += int((out.argmax(1) == self.mb_y).sum())
                seen += n
                self._call("before_backward")
                self.optimizer.zero_grad(set_to_none=True)
                self.loss.backward()
                self._call("after_backward")
                self.optimizer.step()
                self._call("after_update")
                if self.progress:
                    bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{100 * correct / seen:.1f}%")
            self._call("after_training_epoch")
        self._call("after_training_exp")
        self.is_training = False
        self.training_exp_counter += 1
        return {"loss": loss_sum / max(seen, 1), "accuracy": correct / max(seen, 1)}

    @torch.no_grad()
    def evaluate(self, experience: Experience) -> float:
        """Accuracy (fraction) of the model on ``experience``.

        Encoding noise comes from a generator seeded by ``eval_seed`` and the experience, so
        evaluations are repeatable and do not change the training's random stream.
        """
        was_training = self.model.training
        self.model.eval()
        generator = torch.Generator().manual_seed(self.eval_seed + 1009 * experience.current_experience)
        correct = 0
        for start in range(0, len(experience), self.eval_batch_size):
            x, y = experience.batch(slice(start, start + self.eval_batch_size))
            task = torch.full_like(y, experience.task_label)
            correct += int((self.logits(x, task, generator).argmax(1) == y).sum())
        self.model.train(was_training)
        return correct / len(experience)


def gather(exps: list[Experience], offsets: torch.Tensor, index: torch.Tensor):
    """Minibatch ``(x, y, task)`` for global sample ``index`` over the concatenated ``exps``."""
    which = torch.searchsorted(offsets, index, right=True) - 1
    xs, ys, ts = [], [], []
    for e in which.unique().tolist():
        local = index[which == e] - offsets[e]
        x, y = exps[e].batch(local)
        xs.append(x)
        ys.append(y)
        ts.append(torch.full_like(y, exps[e].task_label))
    return torch.cat(xs), torch.cat(ys), torch.cat(ts)
