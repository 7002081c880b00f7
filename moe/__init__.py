"""Merge separately trained CNN teachers into one Mixture-of-Experts classifier.

The library is plain PyTorch: it knows nothing of Typer or DVC. One concept per module:

    tasks      what a task is: image size, teachers, classes, files (loaded from YAML)
    formats    reading and writing the archive's .pth files safely, atomic outputs
    data       merged and per-teacher datasets, splits, batched augmentation
    demo       a synthetic look-alike of the archive, generated from a seed
    sources    where the archive comes from: demo, local zip, Google Drive, CIFAR-100
    models     the teacher CNN and the MoE model (state_dict keys as released)
    checkpoints this project's model files and the original's, with what the forward needs
    teachers   the task's teachers: shipped, or trained here
    merge      teachers -> MoE initialisation, BatchNorm re-estimation
    losses     task, diversity and balance losses
    schedules  the gating temperature schedule
    objectives what a model is trained to do: cross-entropy, the MoE's three terms
    runtime    device, precision, seeding
    training   one loop for any model and objective: early stopping, resumable checkpoints
    inference  eval-mode batches, logits and gates, accuracy
    evaluation test-set evaluation (this project's rules and the original's), confusion, samples
    params     every hyperparameter declared once: type, default, range, meaning
    analysis   which expert serves which class
    plots      figures
"""

__version__ = "0.1.0"
