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

from ..base.tasks import TaskSpec


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


def teacher_baselines(spec: TaskSpec, teacher_files, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """Test accuracy (%) of the teachers' ensemble and of the oracle; each teacher file is run with the
    normalisation it records."""
    from .checkpoints import load_teacher, read_metadata
    from .inference import accuracy, predict
    from .runtime import pick_device

    logits = []
    for t, f in zip(spec.teachers, teacher_files):
        meta = read_metadata(f)
        teacher = load_teacher(f, len(t.class_ids), spec.image_size).to(pick_device())
        logits.append(predict(teacher, images, meta["mean"], meta["std"])[0])
    oracle = oracle_predictions(spec, logits, labels)
    return {"ensemble": round(100.0 * accuracy(ensemble_scores(spec, logits), labels), 2),
            "oracle": round(100.0 * (oracle == labels).float().mean().item(), 2)}
