"""Fit the merged model's router (and, optionally, its classifier) before training starts.

A fresh router gives every expert the same gate, so the merged model does not use what it knows
best: which teacher holds which class. The merge knows that from the task spec. With the merged
backbone and experts frozen, what the router reads (the pooled backbone features) and what the
experts answer are computed once over the training images; the gating network is then fitted for
a few hundred steps to send each image to the experts of the teachers that hold its class (a class
two teachers hold to both, equally), and the classifier, if asked, to the labels over the gated
expert features. Only training images are used; the validation split stays for measuring.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..base.data import Split
from ..base.tasks import TaskSpec
from .folding import fold_batchnorm
from .inference import eval_batches
from .models import MoEModel
from .runtime import autocast

FIT_BATCH = 256


def owner_targets(spec: TaskSpec) -> torch.Tensor:
    """C x E: for each class, equal shares over the experts whose teachers hold it (rows sum to 1)."""
    owners = torch.tensor(spec.owner_matrix(), dtype=torch.float32).T
    return owners / owners.sum(1, keepdim=True)


@dataclass
class CachedFeatures:
    pooled: torch.Tensor  # N x 512, what the router reads
    experts: torch.Tensor  # N x E x 512, each expert's output (eval mode)
    labels: torch.Tensor


@torch.no_grad()
def cache_features(model: MoEModel, split: Split, mean, std, precision: str = "fp32") -> CachedFeatures:
    """One pass of the frozen backbone and experts over ``split`` (BatchNorm folded, eval mode), in
    ``precision`` (bf16 halves the pass where it is native; the fits themselves run in fp32)."""
    folded, _ = fold_batchnorm(model)
    pooled, experts = [], []
    for x in eval_batches(folded, split.images, mean, std):
        with autocast(x.device, precision):
            features = folded.feature_extractor(x)
            pooled.append(features.float().mean(dim=(2, 3)).cpu())
            experts.append(torch.stack([e(features) for e in folded.experts], dim=1).float().cpu())
    return CachedFeatures(torch.cat(pooled), torch.cat(experts), split.labels)


def _fit(params, loss_of, n: int, steps: int, lr: float, seed: int) -> float:
    """``steps`` of AdamW on random batches of the cache; returns the last batch's loss."""
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    g = torch.Generator().manual_seed(seed)
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        idx = torch.randint(0, n, (min(FIT_BATCH, n),), generator=g)
        loss = loss_of(idx)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return loss.item()


def fit_router(model: MoEModel, cache: CachedFeatures, spec: TaskSpec, steps: int, seed: int,
               uniform_share: float = 0.0, lr: float = 3e-3) -> float:
    """Fit the gating network's gate path to ``owner_targets``, mixed with ``uniform_share`` of equal
    gates (soft cross-entropy at the model's gating temperature); returns the final loss. The feature
    path and everything else stay as they are."""
    gate_net = model.gating_network.gate_net
    device = next(model.parameters()).device
    targets = (1 - uniform_share) * owner_targets(spec) + uniform_share / model.num_experts
    pooled, target = cache.pooled.to(device), targets.to(device)[cache.labels.to(device)]
    temperature = model.temperature
    gate_net.train()

    def loss_of(idx):
        logits = gate_net(pooled[idx]).float() / temperature
        return -(target[idx] * F.log_softmax(logits, dim=1)).sum(1).mean()

    torch.manual_seed(seed)  # the gate path's dropout
    return _fit(gate_net.parameters(), loss_of, len(pooled), steps, lr, seed)


def fit_classifier(model: MoEModel, cache: CachedFeatures, steps: int, seed: int, lr: float = 1e-3) -> float:
    """Fit the classifier over the gated expert features and the gating features, the router frozen
    in eval mode (the input the classifier sees at test time); returns the final loss."""
    device = next(model.parameters()).device
    model.gating_network.eval()
    with torch.no_grad():
        pooled = cache.pooled.to(device)
        gates, gate_features = model.gating_network(pooled)
        combined = (gates.unsqueeze(2) * cache.experts.to(device)).sum(1)
        inputs = torch.cat([combined, gate_features.float()], dim=1)
    labels = cache.labels.to(device)
    classifier = model.classifier

    def loss_of(idx):
        return F.cross_entropy(classifier(inputs[idx]).float(), labels[idx])

    return _fit(classifier.parameters(), loss_of, len(inputs), steps, lr, seed)
