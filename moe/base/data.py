"""Datasets in memory as uint8 tensors, and augmentation on whole batches.

The merged task takes each class's images from the lowest-numbered teacher that holds it, so a
shared class is never counted twice. A teacher's own dataset uses its own file in full, with labels
numbered by its sorted class ids (the order of its head).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import MoEError
from .formats import read_split
from .tasks import TaskSpec


@dataclass
class Split:
    images: torch.Tensor  # N x 3 x H x W, uint8
    labels: torch.Tensor  # N, int64, indices into the class list

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: torch.Tensor) -> "Split":
        return Split(self.images[idx], self.labels[idx])


def _check_counts(path, labels, class_ids):
    missing = sorted(set(class_ids) - set(labels.tolist()))
    if missing:
        raise MoEError(f"{path}: no images for class ids {missing}")


def image_key(image: torch.Tensor, class_id: int) -> bytes:
    """An image's identity across files: its pixels and its class id."""
    return hashlib.blake2b(image.numpy().tobytes() + int(class_id).to_bytes(8, "little", signed=True),
                           digest_size=16).digest()


def load_teacher_split(spec: TaskSpec, root: str | Path, teacher: int, part: str) -> Split:
    t = spec.teachers[teacher]
    path = Path(root) / (t.train_file if part == "train" else t.test_file)
    images, ids = read_split(path, spec.image_size, t.class_ids)
    _check_counts(path, ids, t.class_ids)
    lookup = {cid: i for i, cid in enumerate(t.local_order)}
    return Split(images, torch.tensor([lookup[int(c)] for c in ids], dtype=torch.int64))


def load_task_split(spec: TaskSpec, root: str | Path, part: str) -> Split:
    """All classes of the task, every distinct image once.

    Teachers are read in order; an image of a shared class that an earlier teacher's file already
    held (the same pixels and label) is skipped, so shared classes keep every distinct image of every
    teacher and count none twice. When the files repeat the same images (the course archive), this is
    the original's rule: a shared class's images from its lowest-numbered teacher.
    """
    return _merged_split(spec, root, part)[0]


def shared_class_images(spec: TaskSpec, root: str | Path, part: str = "train") -> dict[str, tuple[int, int]]:
    """For each class several teachers hold: (entries across their files, distinct images kept)."""
    merged, entries = _merged_split(spec, root, part)
    return {spec.name_of(cid): (n, int((merged.labels == spec.class_index(cid)).sum())) for cid, n in entries.items()}


def _merged_split(spec: TaskSpec, root: str | Path, part: str) -> tuple[Split, dict[int, int]]:
    """(the merged split, entries of each shared class across the teachers' files), in one read."""
    shared = {c for c in spec.class_ids if len(spec.owners(c)) > 1}
    entries = {c: 0 for c in spec.class_ids if c in shared}
    images, labels = [], []
    seen: set[bytes] = set()  # content of the shared classes' images taken so far
    for t in spec.teachers:
        path = Path(root) / (t.train_file if part == "train" else t.test_file)
        imgs, ids = read_split(path, spec.image_size, t.class_ids)
        _check_counts(path, ids, t.class_ids)
        keep = []
        for k, cid in enumerate(ids.tolist()):
            if cid in shared:
                entries[cid] += 1
                key = image_key(imgs[k], cid)
                if key in seen:
                    continue
                seen.add(key)
            keep.append(k)
        keep = torch.tensor(keep, dtype=torch.int64)
        images.append(imgs[keep])
        labels.append(torch.tensor([spec.class_index(int(c)) for c in ids[keep]], dtype=torch.int64))
    return Split(torch.cat(images), torch.cat(labels)), entries


def load_released_test_split(spec: TaskSpec, root: str | Path) -> Split:
    """Every teacher's test file, concatenated in teacher order, nothing de-duplicated: the images the
    original project evaluated its released models on (a shared class counts once per file holding it)."""
    images, labels = [], []
    for t in spec.teachers:
        path = Path(root) / t.test_file
        imgs, ids = read_split(path, spec.image_size, t.class_ids)
        _check_counts(path, ids, t.class_ids)
        images.append(imgs)
        labels.append(torch.tensor([spec.class_index(int(c)) for c in ids], dtype=torch.int64))
    return Split(torch.cat(images), torch.cat(labels))


def shuffled_per_class(labels: torch.Tensor, classes, generator: torch.Generator) -> list[torch.Tensor]:
    """Each class's image indices in a seeded random order: every per-class draw in the project."""
    out = []
    for c in classes:
        idx = torch.nonzero(labels == c).flatten()
        out.append(idx[torch.randperm(len(idx), generator=generator)])
    return out


def stratified_split(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Hold out ``fraction`` of every class (at least one image where it has two); seeded."""
    train, val = [], []
    for idx in shuffled_per_class(labels, torch.unique(labels).tolist(), torch.Generator().manual_seed(seed)):
        n_val = int(round(len(idx) * fraction))
        if fraction > 0 and len(idx) >= 2:
            n_val = min(max(n_val, 1), len(idx) - 1)
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return torch.sort(torch.cat(train)).values, torch.sort(torch.cat(val)).values


def channel_stats(images: torch.Tensor, digits: int | None = 6) -> tuple[list[float], list[float]]:
    """Per-channel mean and std over every pixel of uint8 images, on the 0..1 scale."""
    x = images.float().div_(255)
    mean = x.mean(dim=(0, 2, 3)).tolist()
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()
    if digits is None:
        return mean, std
    return [round(v, digits) for v in mean], [round(v, digits) for v in std]


def normalize(images: torch.Tensor, mean, std) -> torch.Tensor:
    m = torch.tensor(mean, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255 - m) / s


@dataclass
class TaskData:
    """What training needs: the training part, the validation hold-out, and the training statistics.
    The test split is not here: only evaluation reads it (``load_task_split(..., "test")``)."""
    train: Split
    val: Split
    mean: list[float]
    std: list[float]


def per_class_subset(split: Split, limit: int, seed: int) -> Split:
    """At most ``limit`` images of each class, drawn with a seed; 0 keeps everything."""
    if limit <= 0:
        return split
    shuffled = shuffled_per_class(split.labels, torch.unique(split.labels).tolist(), torch.Generator().manual_seed(seed))
    return split.subset(torch.sort(torch.cat([idx[:limit] for idx in shuffled])).values)


def prepare_task_data(spec: TaskSpec, root: str | Path, val_fraction: float, seed: int,
                      max_train_per_class: int = 0) -> TaskData:
    """The merged task: a seeded, stratified validation hold-out; normalisation from the training part."""
    full = per_class_subset(load_task_split(spec, root, "train"), max_train_per_class, seed)
    train_idx, val_idx = stratified_split(full.labels, val_fraction, seed)
    train = full.subset(train_idx)
    mean, std = channel_stats(train.images)
    return TaskData(train, full.subset(val_idx), mean, std)


def prepare_teacher_data(spec: TaskSpec, root: str | Path, teacher: int, task: TaskData,
                         max_train_per_class: int = 0, seed: int = 0) -> tuple[Split, Split, Split]:
    """(train, validation, test) of one teacher's own classes, labels in its head's order. Its hold-out
    is exactly the merged ``task``'s validation images of its classes (``prepare_task_data``, matched by
    pixels and class), so no teacher trained here has fitted an image the MoE validates on, and the
    MoE's validation accuracy (and the epoch it selects) is not flattered. Of the rest, at most
    ``max_train_per_class`` images of each class (0: all), drawn with ``seed``."""
    full = load_teacher_split(spec, root, teacher, "train")
    held = {image_key(img, spec.class_ids[int(c)]) for img, c in zip(task.val.images, task.val.labels)}
    local_to_id = spec.teachers[teacher].local_order
    in_val = torch.tensor([image_key(img, local_to_id[int(c)]) in held for img, c in zip(full.images, full.labels)],
                          dtype=torch.bool)
    train = per_class_subset(full.subset(torch.nonzero(~in_val).flatten()), max_train_per_class, seed)
    return train, full.subset(torch.nonzero(in_val).flatten()), load_teacher_split(spec, root, teacher, "test")
