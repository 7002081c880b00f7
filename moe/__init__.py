"""Merge separately trained CNN teachers into one Mixture-of-Experts classifier.

The library is plain PyTorch: it knows nothing of Typer or DVC. Four subpackages, grouped by what an
edit to them reruns in the pipeline (dvc.yaml lists them as folders):

    base     what a task is and how its files are read and written; every stage depends on it
             params (every hyperparameter, declared once), tasks, formats, images, data, errors
    sources  where a task's data comes from; the fetch stage alone
             fetching (demo, local archive, Google Drive, CIFAR-100, image folder), demo, cifar,
             image_folder, scaffold (new-task)
    core     the models and how they are made and trained; pretrain, merge, train, the variants
             models, alignment (channel matching), merge, router (fitted at merge time), methods,
             objectives, losses, schedules, training, batches, teachers, checkpoints, inference,
             folding, runtime, distributed, routing, curves, baselines, variants
    results  what is measured and shown from trained models; evaluate, analyze, compare, report
             evaluation, analysis, comparison, plots, report, bench
"""

__version__ = "0.1.0"
