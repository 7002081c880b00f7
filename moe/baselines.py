"""What the merged model is measured against, without training anything: the teachers themselves.

Each teacher answers over its own classes; ``output_index`` maps those answers into the task's
classes. Two ways to combine them per image:

    ensemble  deployable: every teacher's softmax placed in the task's classes; a class's score is
              the highest probability any teacher holding it gives it (the most confident teacher
              wins, and a shared class is voted for by each of its teachers)
    oracle    not deployable: each image goes to a teacher that holds its true class (the first
              one, in spec order); the upper bound of routing, where the only error left is the
              teacher's own
"""

from __future__ import annotations

import torch

from .tasks import TaskSpec


def output_index(spec: TaskSpec) -> list[torch.Tensor]:
    """For each teacher, the task's output index of each of its outputs (its head's sorted-id order)."""
    return [torch.tensor([spec.class_index(c) for c in t.local_order]) for t in spec.teachers]


def ensemble_scores(spec: TaskSpec, teacher_logits: list[torch.Tensor]) -> torch.Tensor:
    """N x C scores in the task's classes (argmax is the ensemble's answer)."""
    n = len(teacher_logits[0])
    scores = torch.zeros(n, spec.num_classes)
    for logits, index in zip(teacher_logits, output_index(spec)):
        probs = logits.float().softmax(1)
        current = scores[:, index]
        scores[:, index] = torch.maximum(current, probs)
    return scores


def oracle_predictions(spec: TaskSpec, teacher_logits: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """N predicted task classes, each image answered by the first teacher that holds its true class."""
    owner_of = torch.tensor([spec.owners(c)[0] for c in spec.class_ids])
    index = output_index(spec)
    answers = torch.stack([index[t][logits.argmax(1)] for t, logits in enumerate(teacher_logits)], dim=1)  # N x T
    return answers.gather(1, owner_of[labels][:, None]).squeeze(1)


def teachers_on(spec: TaskSpec, teachers, normalisations, images: torch.Tensor) -> list[torch.Tensor]:
    """Each teacher's logits over its own classes for every image (each with its own normalisation)."""
    from .inference import predict

    return [predict(model, images, mean, std)[0] for model, (mean, std) in zip(teachers, normalisations)]


def compare_without_training(spec: TaskSpec, teacher_logits: list[torch.Tensor], labels: torch.Tensor) -> dict:
    """Test accuracy (%) of the teachers' ensemble and of the oracle, on the task's test split."""
    from .inference import accuracy

    oracle = oracle_predictions(spec, teacher_logits, labels)
    return {"ensemble": round(100.0 * accuracy(ensemble_scores(spec, teacher_logits), labels), 2),
            "oracle": round(100.0 * (oracle == labels).float().mean().item(), 2)}
