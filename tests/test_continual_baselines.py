"""Baselines (EWC, replay) and the continual metrics, against closed forms and numpy."""

import numpy as np
import pytest
import torch
from torch import nn

from spikelab.continual import EWC, DirectEncoder, Plugin, Replay, Strategy
from spikelab.continual.ewc import empirical_fisher, ewc_penalty
from spikelab.data.continual import Experience
from spikelab.metrics.continual import average_accuracy, backward_transfer, forward_transfer, percent


class MeanLinear(nn.Module):
    """Softmax regression on the time-averaged input: logits = W mean_t(x) + b."""

    def __init__(self, d: int, k: int) -> None:
        super().__init__()
        self.lin = nn.Linear(d, k)

    def forward(self, x, task=None):
        return self.lin(x.mean(0))


def _experience(n=40, d=5, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Experience(0, 0, torch.rand(n, d, generator=g), torch.randint(k, (n,), generator=g), tuple(range(k)))


def test_empirical_fisher_matches_closed_form():
    torch.manual_seed(0)
    model = MeanLinear(5, 3)
    exp = _experience()
    strategy = Strategy(model, DirectEncoder(3), training="bptt", progress=False)
    fisher = empirical_fisher(strategy, exp, n_samples=len(exp))
    # closed form for softmax regression: d log p(y|x) / dW = (onehot(y) - p) x^T, d/db = onehot(y) - p
    x, y = exp.batch(slice(None))
    with torch.no_grad():
        p = torch.softmax(model.lin(x), 1)
    e = nn.functional.one_hot(y, 3).float() - p
    fw = ((e[:, :, None] * x[:, None, :]) ** 2).mean(0)
    assert torch.allclose(fisher["lin.weight"], fw, atol=1e-6)
    assert torch.allclose(fisher["lin.bias"], (e**2).mean(0), atol=1e-6)


def test_ewc_penalty_and_plugin_anchor():
    model = MeanLinear(4, 2)
    star = {n: p.detach().clone() for n, p in model.named_parameters()}
    fisher = {n: torch.rand_like(p) for n, p in model.named_parameters()}
    with torch.no_grad():
        model.lin.weight += 0.3
    expected = sum(float((fisher[n] * (p.detach() - star[n]) ** 2).sum()) for n, p in model.named_parameters())
    assert float(ewc_penalty(model, [(fisher, star)]).detach()) == pytest.approx(expected, rel=1e-6)
    assert float(ewc_penalty(model, [(fisher, star), (fisher, star)]).detach()) == pytest.approx(2 * expected, rel=1e-6)

    # the plugin anchors at the parameters after each task and adds lambda/2 * penalty afterwards
    exp = _experience(d=4, k=2)
    plugin = EWC(10.0, n_samples=8)
    strategy = Strategy(model, DirectEncoder(2), training="bptt", epochs=1, batch_size=8, plugins=[plugin], progress=False)
    strategy.train(exp)
    assert len(plugin.anchors) == 1
    assert all(torch.equal(plugin.anchors[0][1][n], p) for n, p in model.named_parameters())
    strategy.train(exp)
    assert len(plugin.anchors) == 2
    online = EWC(1.0, mode="online", decay=0.5, n_samples=8)
    strategy = Strategy(model, DirectEncoder(2), training="bptt", batch_size=8, plugins=[online], progress=False)
    strategy.train(exp)
    first = online.anchors[0][0]["lin.bias"].clone()
    strategy.train(exp)
    assert len(online.anchors) == 1
    assert torch.all(online.anchors[0][0]["lin.bias"] >= 0.5 * first - 1e-7)


def test_replay_memory_and_minibatch_extension():
    model = MeanLinear(5, 3)
    replay = Replay(memory_per_task=7, batch_size=4)
    strategy = Strategy(model, DirectEncoder(2), training="bptt", batch_size=10, plugins=[replay], progress=False)
    exp0, exp1 = _experience(seed=0), _experience(seed=1)
    exp1.task_label = 1
    strategy.train(exp0)
    assert replay.x.shape == (7, 5) and set(replay.task.tolist()) == {0}
    # every stored sample is one of the experience's samples with its label
    x0, y0 = exp0.batch(slice(None))
    for xi, yi in zip(replay.x, replay.y):
        match = (x0 == xi).all(1)
        assert match.any() and int(y0[match][0]) == int(yi)
    sizes = []

    class Spy(Plugin):  # records the minibatch the model sees
        def before_backward(self, s):
            sizes.append((len(s.mb_y), int((s.mb_task == 0).sum())))

    strategy.plugins.append(Spy())
    strategy.train(exp1)
    assert sizes == [(14, 4)] * 4  # 10 new samples + 4 from the memory in each of the 4 minibatches
    assert replay.x.shape == (14, 5) and set(replay.task.tolist()) == {0, 1}


def test_metrics_against_numpy():
    rng = np.random.default_rng(0)
    r = rng.uniform(50, 100, (4, 4))
    b = rng.uniform(5, 15, 4)
    assert average_accuracy(r) == pytest.approx(np.mean(r[3]))
    assert backward_transfer(r) == pytest.approx(np.mean([r[3, j] - r[j, j] for j in range(3)]))
    assert forward_transfer(r, b) == pytest.approx(np.mean([r[j - 1, j] - b[j] for j in range(1, 4)]))
    r[0, 2] = np.nan  # unevaluated entries outside the formulas do not matter
    assert backward_transfer(r) == pytest.approx(np.mean([r[3, j] - r[j, j] for j in range(3)]))
    r[1, 2] = np.nan
    assert forward_transfer(r, b) is None
    assert backward_transfer([[90.0]]) == 0.0 and percent(0.5) == 50.0 and percent(None) is None
    with pytest.raises(ValueError, match="square"):
        average_accuracy(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="last row"):
        average_accuracy([[1.0, np.nan], [1.0, np.nan]])
