"""The numbers behind the expert plots."""

import copy

import pytest
import torch

from moe.core.inference import predict
from moe.core.models import MoEModel
from moe.core.routing import gate_contribution, routing_summary
from moe.core.runtime import resolve_precision
from moe.results.analysis import forced_expert_accuracy
from moe.results.evaluation import predict_with_experts

MEAN, STD = [0.5] * 3, [0.25] * 3


class ConstantGate(torch.nn.Module):
    """A router replaced by a one-hot constant: what forced routing must be equivalent to."""

    def __init__(self, real, expert, num_experts):
        super().__init__()
        self.real = real
        self.gates = torch.zeros(num_experts)
        self.gates[expert] = 1

    def forward(self, pooled):
        _, features = self.real(pooled)
        return self.gates.expand(len(pooled), -1), features


def test_forced_routing_equals_model_with_constant_one_hot_gate():
    torch.manual_seed(0)
    model = MoEModel(6, 3).eval()
    images = torch.randint(0, 256, (24, 3, 16, 16), dtype=torch.uint8)
    labels = torch.arange(24) % 6
    one_pass = predict_with_experts(model, images, MEAN, STD)
    routed_logits, routed_gates = predict(model, images, MEAN, STD)
    torch.testing.assert_close(one_pass["logits"], routed_logits)
    torch.testing.assert_close(one_pass["gates"], routed_gates)
    forced_logits = one_pass["expert_logits"]
    forced = forced_expert_accuracy(forced_logits, labels, 6)
    for e in range(3):
        twin = copy.deepcopy(model)
        twin.gating_network = ConstantGate(twin.gating_network, e, 3)
        logits, gates = predict(twin, images, MEAN, STD)
        assert torch.all(gates[:, e] == 1)
        torch.testing.assert_close(forced_logits[:, e], logits)
        pred = logits.argmax(1)
        per_class = torch.stack([(pred[labels == c] == c).float().mean() * 100 for c in range(6)])
        torch.testing.assert_close(forced[e], per_class)


def test_contribution_columns_sum_to_one_and_average_gates():
    gates = torch.tensor([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.0, 0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    c = gate_contribution(gates, labels, 2)
    torch.testing.assert_close(c[:, 0], torch.tensor([0.6, 0.25, 0.15]))
    torch.testing.assert_close(c.sum(0), torch.ones(2))


def test_routing_summary_agreement_entropy_dead(task_b):
    n = task_b.num_classes
    labels = torch.arange(n)
    owners = torch.tensor(task_b.owner_matrix(), dtype=torch.float).T  # classes x experts
    gates = owners / owners.sum(1, keepdim=True)  # each class split among its owners
    summary = routing_summary(task_b, gates, labels)
    assert summary["routing_agreement"] == 100.0
    onehot = torch.zeros(n, 3)
    onehot[:, 0] = 1
    bad = routing_summary(task_b, onehot, labels)
    assert bad["routing_entropy"] == 0.0 and bad["dead_experts"] == ["african_animals", "canidae"]
    assert bad["routing_agreement"] == round(100 * 5 / 12, 2)  # teacher 1 owns 5 of the 12 classes


def test_bf16_fast_path_matches_fp32_reference_logits():
    torch.manual_seed(0)
    model = MoEModel(6, 3).eval()
    images = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    ref, _ = predict(model, images, MEAN, STD, precision="fp32")
    fast, _ = predict(model, images, MEAN, STD, precision="bf16")
    torch.testing.assert_close(fast, ref, rtol=0.05, atol=0.05 * ref.abs().max().item())
    assert resolve_precision("auto", torch.device("cpu")) in ("bf16", "fp32")


@pytest.mark.parametrize("amx, avx512_bf16, capability, isa_cap, fast", [
    (False, False, "AVX2", None, False),          # an AVX2-only CPU: bf16 emulated, auto stays in fp32
    (False, True, "AVX512", None, True),          # native AVX512-BF16
    (True, False, "AVX512", "ALL", True),         # AMX
    (False, True, "AVX2", None, False),           # ATEN_CPU_CAPABILITY=avx2 forced on a bf16 CPU
    (False, True, "AVX512", "AVX2", False),       # ONEDNN_MAX_CPU_ISA=AVX2: oneDNN emulates bf16
    (False, True, "AVX512", "AVX512_CORE_BF16", True),
])
def test_auto_precision_takes_bf16_only_where_the_kernels_run_it_natively(monkeypatch, amx, avx512_bf16, capability,
                                                                          isa_cap, fast):
    from moe.core.runtime import bf16_is_fast

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    if isa_cap is None:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    else:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa_cap)
    assert bf16_is_fast(torch.device("cpu")) is fast
    assert resolve_precision("auto", torch.device("cpu")) == ("bf16" if fast else "fp32")
