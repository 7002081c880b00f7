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
