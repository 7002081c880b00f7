"""Merge separately trained CNN teachers into one Mixture-of-Experts classifier.

The library is plain PyTorch: it knows nothing of Typer or DVC. One concept per module:

    tasks      what a task is: image size, teachers, classes, files (loaded from YAML)
    formats    reading and writing the archive's .pth files safely, atomic outputs
    data       merged and per-teacher datasets, splits, batched augmentation
    demo       a synthetic look-alike of the archive, generated from a seed
    sources    where the archive comes from: demo, local zip, Google Drive, CIFAR-100
    models     the teacher CNN and the MoE model (state_dict keys as released)
    merge      teachers -> MoE initialisation, BatchNorm re-estimation
    losses     task, diversity and balance losses
    schedules  the gating temperature schedule
    runtime    device, precision, seeding
    training   the training loop with early stopping and resumable checkpoints
    evaluation accuracy, confusion, predictions with gate weights
    analysis   which expert serves which class
    plots      figures
"""

__version__ = "0.1.0"
