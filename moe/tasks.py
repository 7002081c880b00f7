"""A task is data: image size, the teachers with their classes, and where their files lie.

Specs live in YAML files (``tasks/*.yaml``); nothing in the library knows a particular task.
Output index order of the merged model is the order of ``classes`` in the spec, which lets a
spec match a released checkpoint's head exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import MoEError

DATA_FORMATS = ("numpy", "torch")  # how a split file stores images: numpy array + lists, or tensors


@dataclass(frozen=True)
class TeacherSpec:
    name: str
    class_ids: tuple[int, ...]  # label ids this teacher was trained on; its head is in sorted-id order
    train_file: str  # relative to the archive root
    test_file: str
    checkpoint: str | None = None  # a shipped teacher checkpoint, if the source has one

    @property
    def local_order(self) -> tuple[int, ...]:
        return tuple(sorted(self.class_ids))


@dataclass(frozen=True)
class TaskSpec:
    name: str
    image_size: int
    class_ids: tuple[int, ...]  # merged output order
    class_names: tuple[str, ...]
    teachers: tuple[TeacherSpec, ...]
    data_format: str = "torch"
    released_checkpoints: str | None = None  # folder of released MoE checkpoints in the archive

    @property
    def num_classes(self) -> int:
        return len(self.class_ids)

    @property
    def num_experts(self) -> int:
        return len(self.teachers)

    def class_index(self, label_id: int) -> int:
        return self.class_ids.index(label_id)

    def name_of(self, label_id: int) -> str:
        return self.class_names[self.class_index(label_id)]

    def owners(self, label_id: int) -> list[int]:
        """Teachers (by position) that hold a class; a shared class has more than one."""
        return [i for i, t in enumerate(self.teachers) if label_id in t.class_ids]

    def group_bounds(self) -> list[int]:
        """Class positions where one teacher's block ends, when each teacher's classes sit together in
        the output order (Task A); [] when the groups interleave or overlap (Task B)."""
        bounds, position = [], 0
        for t in self.teachers:
            block = set(self.class_ids[position:position + len(t.class_ids)])
            if block != set(t.class_ids):
                return []
            position += len(t.class_ids)
            bounds.append(position)
        return bounds[:-1]

    def owner_matrix(self):
        """experts x classes, 1 where teacher i was trained on class c (for routing agreement)."""
        return [[1 if cid in t.class_ids else 0 for cid in self.class_ids] for t in self.teachers]


def _fail(path, msg):
    raise MoEError(f"{path}: {msg}")


def parse_task(raw: dict, source: str = "<task>") -> TaskSpec:
    if not isinstance(raw, dict):
        _fail(source, "a task spec must be a mapping")
    for key in ("name", "image_size", "classes", "teachers"):
        if key not in raw:
            _fail(source, f"missing key '{key}'")
    classes = raw["classes"]
    if not isinstance(classes, list) or not classes:
        _fail(source, "'classes' must be a non-empty list of {id, name}")
    try:
        class_ids = tuple(int(c["id"]) for c in classes)
        class_names = tuple(str(c["name"]) for c in classes)
    except (KeyError, TypeError, ValueError):
        _fail(source, "every class needs an integer 'id' and a 'name'")
    if len(set(class_ids)) != len(class_ids):
        _fail(source, "class ids must be unique")
    teachers = []
    for i, t in enumerate(raw["teachers"] or []):
        try:
            ids = tuple(int(c) for c in t["classes"])
            teachers.append(TeacherSpec(name=str(t["name"]), class_ids=ids, train_file=str(t["train"]),
                                        test_file=str(t["test"]), checkpoint=t.get("checkpoint")))
        except (KeyError, TypeError, ValueError):
            _fail(source, f"teacher {i + 1} needs 'name', integer 'classes', 'train' and 'test'")
        unknown = set(ids) - set(class_ids)
        if unknown:
            _fail(source, f"teacher '{t['name']}' has class ids {sorted(unknown)} not in 'classes'")
    if len(teachers) < 2:
        _fail(source, "a task needs at least two teachers")
    covered = {c for t in teachers for c in t.class_ids}
    if covered != set(class_ids):
        _fail(source, f"classes {sorted(set(class_ids) - covered)} belong to no teacher")
    size = raw["image_size"]
    if not isinstance(size, int) or size < 8 or size % 4:
        _fail(source, "'image_size' must be an integer >= 8 divisible by 4")
    fmt = raw.get("data_format", "torch")
    if fmt not in DATA_FORMATS:
        _fail(source, f"'data_format' must be one of {DATA_FORMATS}")
    if "released_normalization" in raw:
        _fail(source, "'released_normalization' is no longer read: released models are normalised with the "
                      "statistics of the images they are evaluated on, as the original project did; remove it")
    return TaskSpec(
        name=str(raw["name"]), image_size=size, class_ids=class_ids, class_names=class_names,
        teachers=tuple(teachers), data_format=fmt, released_checkpoints=raw.get("released_checkpoints"),
    )


def load_task(path: str | Path) -> TaskSpec:
    path = Path(path)
    if not path.is_file():
        raise MoEError(f"{path}: task spec not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise MoEError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    return parse_task(raw, str(path))
