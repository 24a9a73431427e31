"""Experience replay: keep a few samples of every finished task and mix them into each minibatch.

After each task, ``memory_per_task`` of its training samples (a seeded random subset) join the
memory. While later tasks train, every minibatch is extended with ``batch_size`` samples drawn
at random from the memory (with their own task labels, so multi-head models use the right heads).
"""

from __future__ import annotations

import torch

from spikelab.continual.strategy import Plugin


class Replay(Plugin):
    """The experience-replay baseline as a strategy plugin.

    Args:
        memory_per_task: samples stored from each finished task.
        batch_size: memory samples added to every minibatch.
    """

    def __init__(self, memory_per_task: int = 200, batch_size: int = 64) -> None:
        if memory_per_task < 1 or batch_size < 1:
            raise ValueError(f"replay memory_per_task and batch_size must be positive; got {memory_per_task}, {batch_size}")
        self.memory_per_task, self.batch_size = memory_per_task, batch_size
        self.x: torch.Tensor | None = None
        self.y: torch.Tensor | None = None
        self.task: torch.Tensor | None = None

    def before_forward(self, strategy) -> None:
        if self.x is None:
            return
        pick = torch.randint(len(self.y), (self.batch_size,), generator=strategy.generator)
        strategy.mb_x = torch.cat([strategy.mb_x, self.x[pick]])
        strategy.mb_y = torch.cat([strategy.mb_y, self.y[pick]])
        strategy.mb_task = torch.cat([strategy.mb_task, self.task[pick]])

    def after_training_exp(self, strategy) -> None:
        exp = strategy.experience
        index = torch.randperm(len(exp), generator=strategy.generator)[: self.memory_per_task]
        x, y = exp.batch(index)
        task = torch.full_like(y, exp.task_label)
        if self.x is None:
            self.x, self.y, self.task = x, y, task
        else:
            self.x, self.y, self.task = torch.cat([self.x, x]), torch.cat([self.y, y]), torch.cat([self.task, task])

    def state_dict(self) -> dict:
        return {"x": self.x, "y": self.y, "task": self.task}

    def load_state_dict(self, state: dict) -> None:
        self.x, self.y, self.task = state["x"], state["y"], state["task"]
