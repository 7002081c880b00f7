"""Gating temperature: cosine annealing from initial to final over the training epochs."""

import math


def temperature_at(epoch: int, num_epochs: int, initial: float, final: float) -> float:
    """T_t = T_final + (T_initial - T_final) (1 + cos(pi t / T)) / 2, with T = num_epochs - 1.

    The original divides by ``epochs`` and so never reaches T_final; dividing by the last epoch's
    index makes epoch 0 use exactly the initial and the last epoch exactly the final temperature.
    """
    if num_epochs <= 1:
        return float(final)
    t = min(max(epoch, 0), num_epochs - 1) / (num_epochs - 1)
    return final + 0.5 * (initial - final) * (1 + math.cos(math.pi * t))


def lr_factor(step: int, steps_per_epoch: int, num_epochs: int, warmup_epochs: float) -> float:
    """The learning rate at optimizer step ``step``, as a share of ``lr``: cosine over the epochs (one value
    per epoch, the original's per-epoch annealing), times a linear warmup over the first
    ``warmup_epochs`` epochs' steps (Adam's first steps move every weight by about ``lr`` whatever its
    gradient; a warmup lets its moment estimates settle first)."""
    epoch = step // max(steps_per_epoch, 1)
    cosine = 0.5 * (1 + math.cos(math.pi * epoch / max(num_epochs, 1)))
    warmup_steps = warmup_epochs * steps_per_epoch
    return cosine * (min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0)
