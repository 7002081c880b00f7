import math

import pytest
import torch

from moe.core.losses import balance_loss, diversity_loss, moe_loss
from moe.core.schedules import temperature_at

GATES = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])


def test_diversity_loss_by_hand():
    # sample 1: 2(0.5*0.3 + 0.5*0.2 + 0.3*0.2) = 0.62 ; sample 2: 2(0.01 + 0.08 + 0.08) = 0.34 ; mean 0.48
    assert diversity_loss(GATES).item() == pytest.approx(0.48, abs=1e-6)


def test_balance_loss_by_hand_and_zero_when_uniform():
    # usage = (0.3, 0.2, 0.5): (1/3-0.3)^2 + (1/3-0.2)^2 + (1/3-0.5)^2 = 0.0466667
    assert balance_loss(GATES).item() == pytest.approx(0.04666667, abs=1e-6)
    assert balance_loss(torch.full((5, 3), 1 / 3)).item() == pytest.approx(0.0, abs=1e-12)


def test_total_loss_combines_terms_with_weights():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    labels = torch.tensor([0, 2])
    ce = (-math.log(math.exp(2) / (math.exp(2) + 2)) - math.log(1 / (math.e + 2))) / 2
    terms = moe_loss(logits, labels, GATES, diversity_weight=0.1, balance_weight=0.5)
    assert terms.task.item() == pytest.approx(ce, abs=1e-6)
    assert terms.total.item() == pytest.approx(ce + 0.1 * 0.48 + 0.5 * 0.04666667, abs=1e-6)


def test_temperature_schedule_endpoints_and_monotone():
    temps = [temperature_at(e, 10, 2.0, 0.5) for e in range(10)]
    assert temps[0] == pytest.approx(2.0)
    assert temps[-1] == pytest.approx(0.5)
    assert temps[5] == pytest.approx(0.5 + 0.75 * (1 + math.cos(math.pi * 5 / 9)))
    assert all(b <= a for a, b in zip(temps, temps[1:]))
    assert temperature_at(0, 1, 2.0, 0.5) == 0.5


def test_learning_rate_factor_by_hand():
    from moe.core.schedules import lr_factor

    # 4 steps per epoch, 2 epochs: cosine is 1 in epoch 0 and (1 + cos(pi / 2)) / 2 = 0.5 in epoch 1
    assert [lr_factor(s, 4, 2, 0.0) for s in range(8)] == [1.0] * 4 + [0.5] * 4
    # one epoch of warmup: 1/4, 2/4, 3/4, 4/4, then the cosine alone
    assert [lr_factor(s, 4, 2, 1.0) for s in range(8)] == [0.25, 0.5, 0.75, 1.0] + [0.5] * 4
    assert abs(lr_factor(1, 4, 2, 0.5) - 1.0) < 1e-12  # half an epoch: full rate from the second step
