"""Image folders in the torchvision ImageFolder convention, turned into the archive's layout.

    <images>/train/<class name>/*.png|jpg|jpeg
    <images>/test/<class name>/...
    <images>/val/<class name>/...        optional: added to the training pool (the pipeline draws
                                         its own seeded validation hold-out from it)

Each teacher's files hold the images of its classes; a class shared by teachers is the same folder,
so its images are the same in each file (and counted once in the merged task).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..base.errors import MoEError
from ..base.formats import write_split
from ..base.images import IMAGE_SUFFIXES, load_image
from ..base.tasks import TaskSpec


def class_images(folder: Path, spec: TaskSpec, part: str, say=lambda s: None) -> dict[int, torch.Tensor]:
    """class id -> its images (N x 3 x H x W uint8) under folder/part/<class name>/, in file-name order."""
    out, resized = {}, []
    for cid, name in zip(spec.class_ids, spec.class_names):
        files = []
        for sub in ((part, "val") if part == "train" else (part,)):
            d = folder / sub / name
            if sub == part and not d.is_dir():
                raise MoEError(f"{d}: folder not found (class '{name}' of task {spec.name} needs its {part} images there)")
            if d.is_dir():
                files += sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise MoEError(f"{folder / part / name}: no .png, .jpg or .jpeg images")
        images = []
        for f in files:
            image, size = load_image(f, spec.image_size)
            images.append(image)
            if size != (spec.image_size, spec.image_size):
                resized.append((f, size))
        out[cid] = torch.stack(images)
    if resized:
        f, (w, h) = resized[0]
        say(f"warning: {len(resized)} {part} images are not {spec.image_size}x{spec.image_size} (e.g. {f}, {w}x{h}); "
            "they were resized (bilinear, whole image)")
    return out


def build_from_image_folder(spec: TaskSpec, folder: str | Path, out_dir: Path, say=lambda s: None) -> dict:
    """Write each teacher's train and test files under ``out_dir`` from the image folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MoEError(f"{folder}: image folder not found (the task's 'images')")
    counts = {}
    for part in ("train", "test"):
        per_class = class_images(folder, spec, part, say)
        counts[part] = sum(len(v) for v in per_class.values())
        for t in spec.teachers:
            ids = sorted(t.class_ids)
            images = torch.cat([per_class[c] for c in ids])
            labels = torch.cat([torch.full((len(per_class[c]),), c, dtype=torch.int64) for c in ids])
            write_split(out_dir / (t.train_file if part == "train" else t.test_file), images, labels, spec.data_format)
    return {"images": str(folder), "train_images": counts["train"], "test_images": counts["test"]}


def export_image_folder(spec: TaskSpec, data_root: str | Path, out: str | Path) -> int:
    """Write a fetched task's images as an image folder (train/ and test/ by class name, PNG);
    returns the number of images. A way to try your own task's steps on data you have here."""
    from PIL import Image

    from ..base.data import load_task_split

    out = Path(out)
    if out.exists():
        raise MoEError(f"{out}: exists already (choose a new folder)")
    count = 0
    for part in ("train", "test"):
        split = load_task_split(spec, data_root, part)
        for k, (image, label) in enumerate(zip(split.images, split.labels.tolist())):
            folder = out / part / spec.class_names[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{k:05d}.png")
            count += 1
    return count
