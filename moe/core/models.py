"""The teacher CNN and the Mixture-of-Experts model, with the released checkpoints' exact keys.

Backbone (shared by both): conv 3->64, residual 64->128, max-pool, residual 128->256 (two convs),
max-pool, 1x1 conv 256->512. A teacher then has one depthwise-separable block and a linear head; the
MoE has one such block per expert, a two-path gating network and one classifier over
[gate-weighted expert features (512), gating features (256)].
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

FEATURES = 512  # channels out of the backbone, and width of an expert's output
GATE_HIDDEN = 256
# The original builds its gating network at this temperature, and a checkpoint loaded there keeps it
# (the temperature is a plain attribute, not in the state_dict).
ORIGINAL_GATE_TEMPERATURE = 2.0


_BIT = torch.arange(8, dtype=torch.uint8)


def half_keep_mask(shape: torch.Size) -> torch.Tensor:
    """A uint8 mask of 0s and 1s, each 1 with probability 1/2, eight from every random byte.

    On the CPU ``bernoulli_`` draws one random number per element; the experts' dropout masks
    (B x 512 x 8 x 8 at 32x32, twice per expert per step) cost 7 % of a training step that way.
    """
    n = torch.Size(shape).numel()
    words = torch.randint(-2**63, 2**63 - 1, ((n + 63) // 64,), dtype=torch.int64)  # uses torch's global RNG
    return ((words.view(torch.uint8)[:, None] >> _BIT) & 1).view(-1)[:n].view(shape)


class Dropout(nn.Dropout):
    """``nn.Dropout`` that, for p = 0.5 on the CPU, draws its mask from random bits (``half_keep_mask``):
    the same distribution, about eight times cheaper there. Elsewhere it is ``nn.Dropout`` itself."""

    def forward(self, x):
        if not self.training or self.p != 0.5 or self.inplace or x.device.type != "cpu":
            return super().forward(x)
        if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
            n, c, h, w = x.shape  # the mask in the input's own layout: the multiply then runs in order
            keep = half_keep_mask(torch.Size((n, h, w, c))).permute(0, 3, 1, 2)
        else:
            keep = half_keep_mask(x.shape)
        return x * keep.to(x.dtype).mul_(2)


class ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)), inplace=True)


class ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int, num_convs: int = 1):
        super().__init__()
        self.main_path = nn.Sequential(*[ConvBlock(cin if i == 0 else cout, cout) for i in range(num_convs)])
        self.shortcut = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return F.relu(self.main_path(x) + self.shortcut(x), inplace=True)


class DepthwiseSeparable(nn.Module):
    def __init__(self, channels: int = FEATURES):
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.pointwise = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x):
        return F.relu(self.bn(self.pointwise(self.depthwise(x))), inplace=True)


def make_backbone() -> nn.Sequential:
    """Indices 0, 1, 3, 5 hold weights (2 and 4 are pools), as in the released MoE checkpoints."""
    return nn.Sequential(
        ConvBlock(3, 64),
        ResidualBlock(64, 128, 1),
        nn.MaxPool2d(2),
        ResidualBlock(128, 256, 2),
        nn.MaxPool2d(2),
        ConvBlock(256, FEATURES, kernel=1),
    )


BACKBONE_OF_TEACHER = {"conv1": "0", "residual1": "1", "residual2": "3", "conv2": "5"}


def _init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


class TeacherCNN(nn.Module):
    """One teacher: the backbone, one depthwise-separable block, a linear head over its classes."""

    def __init__(self, num_classes: int = 5):
        super().__init__()
        self.conv1 = ConvBlock(3, 64)
        self.residual1 = ResidualBlock(64, 128, 1)
        self.residual2 = ResidualBlock(128, 256, 2)
        self.conv2 = ConvBlock(256, FEATURES, kernel=1)
        self.conv3 = nn.Sequential(DepthwiseSeparable(), Dropout(0.5))
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), Dropout(0.5),
                                        nn.Linear(FEATURES, num_classes))
        _init_weights(self)

    @property
    def head(self) -> nn.Linear:
        """The linear layer over the teacher's classes (index 3 of ``classifier``, as in its files)."""
        return self.classifier[3]

    def forward(self, x):
        x = F.max_pool2d(self.residual1(self.conv1(x)), 2)
        x = F.max_pool2d(self.residual2(x), 2)
        return self.classifier(self.conv3(self.conv2(x)))


def make_expert() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(FEATURES, FEATURES, 3, padding=1, groups=FEATURES, bias=False),
        nn.Conv2d(FEATURES, FEATURES, 1, bias=False),
        nn.BatchNorm2d(FEATURES),
        nn.ReLU(inplace=True),
        Dropout(0.5),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        Dropout(0.5),
    )


class GatingNetwork(nn.Module):
    """Two paths over the pooled backbone features: extra features for the classifier, and gates.

    ``temperature`` is set by the training loop each epoch and recorded beside the state_dict in
    every file this project writes; it is not part of the state_dict, so released checkpoints load
    unchanged (at the original's 2.0). Gaussian noise on the logits during training keeps the
    router from settling early.
    """

    def __init__(self, num_experts: int, noise_std: float = 0.1):
        super().__init__()
        self.feature_net = nn.Sequential(
            nn.Linear(FEATURES, GATE_HIDDEN), nn.BatchNorm1d(GATE_HIDDEN), nn.ReLU(inplace=True), Dropout(0.2),
            nn.Linear(GATE_HIDDEN, GATE_HIDDEN), nn.BatchNorm1d(GATE_HIDDEN), nn.ReLU(inplace=True),
        )
        self.gate_net = nn.Sequential(
            nn.Linear(FEATURES, GATE_HIDDEN), nn.BatchNorm1d(GATE_HIDDEN), nn.ReLU(inplace=True), Dropout(0.2),
            nn.Linear(GATE_HIDDEN, num_experts),
        )
        self.temperature = ORIGINAL_GATE_TEMPERATURE
        self.noise_std = noise_std

    def forward(self, pooled):
        logits = self.gate_net(pooled).float() / self.temperature
        if self.training and self.noise_std > 0:
            logits = logits + torch.randn_like(logits) * self.noise_std
        return F.softmax(logits, dim=1), self.feature_net(pooled)


class MoEModel(nn.Module):
    def __init__(self, num_classes: int, num_experts: int = 3, gate_noise_std: float = 0.1):
        super().__init__()
        self.feature_extractor = make_backbone()
        self.experts = nn.ModuleList([make_expert() for _ in range(num_experts)])
        self.gating_network = GatingNetwork(num_experts, gate_noise_std)
        self.classifier = nn.Linear(FEATURES + GATE_HIDDEN, num_classes)
        _init_weights(self)
        last = self.gating_network.gate_net[-1]  # start from equal gates
        nn.init.normal_(last.weight, 0, 0.01)
        nn.init.zeros_(last.bias)

    @property
    def num_experts(self) -> int:
        return len(self.experts)

    @property
    def temperature(self) -> float:
        return self.gating_network.temperature

    def set_temperature(self, temperature: float) -> None:
        self.gating_network.temperature = float(temperature)

    def parts(self, x):
        """Every expert's output (B x E x 512), the router's gates and the gating features.

        Split from ``forward`` so that analysis gets the routed and every forced prediction from
        one pass through the backbone and experts.
        """
        features = self.feature_extractor(x)
        pooled = features.mean(dim=(2, 3))
        routed, gate_features = self.gating_network(pooled)
        expert_out = torch.stack([expert(features) for expert in self.experts], dim=1)
        return expert_out, routed, gate_features

    def combine(self, expert_out, gates, gate_features):
        """Classifier logits for the gate-weighted expert outputs."""
        combined = (gates.unsqueeze(2).to(expert_out.dtype) * expert_out).sum(dim=1)
        return self.classifier(torch.cat([combined, gate_features.to(combined.dtype)], dim=1))

    def forward(self, x, gates: torch.Tensor | None = None):
        """Return (logits, gates). ``gates`` overrides the router (e.g. one-hot to test one expert)."""
        expert_out, routed, gate_features = self.parts(x)
        gates = routed if gates is None else gates
        return self.combine(expert_out, gates, gate_features), gates


def reference_shapes(model: nn.Module) -> dict[str, torch.Size]:
    return {k: v.shape for k, v in model.state_dict().items()}
