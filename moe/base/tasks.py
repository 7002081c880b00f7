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
from .params import NAME_PATTERN, SOURCES

DATA_FORMATS = ("numpy", "torch")  # how a split file stores images: numpy array + lists, or tensors


@dataclass(frozen=True)
class TeacherSpec:
    name: str
    class_ids: tuple[int, ...]  # label ids this teacher was trained on; its head is in sorted-id order
    train_file: str  # relative to the task's data folder
    test_file: str
    shipped_checkpoint: str | None = None  # in the data folder, when the source ships the teacher
    checkpoint: str | None = None  # the user's own trained teacher (a path from the project folder)
    onnx: str | None = None  # or a classifier of any architecture, as an ONNX file (a path from the project folder)
    mean: tuple[float, ...] | None = None  # the normalisation that teacher was trained with, if stated
    std: tuple[float, ...] | None = None

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
    source: str | None = None  # where the data comes from; None: params.yaml's 'source' decides
    images: str | None = None  # source image_folder: the folder with train/ and test/ (and val/)

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

    @property
    def onnx_teachers(self) -> list[str]:
        return [t.name for t in self.teachers if t.onnx]

    def owner_matrix(self):
        """experts x classes, 1 where teacher i was trained on class c (for routing agreement)."""
        return [[1 if cid in t.class_ids else 0 for cid in self.class_ids] for t in self.teachers]


def _fail(path, msg):
    raise MoEError(f"{path}: {msg}")


def _duplicates(values) -> list:
    seen, dup = set(), []
    for v in values:
        if v in seen and v not in dup:
            dup.append(v)
        seen.add(v)
    return dup


def _normalisation(source, where: str, raw) -> tuple[tuple[float, ...], tuple[float, ...]] | tuple[None, None]:
    if raw is None:
        return None, None
    try:
        mean, std = tuple(float(v) for v in raw["mean"]), tuple(float(v) for v in raw["std"])
    except (KeyError, TypeError, ValueError):
        _fail(source, f"{where}: 'normalization' needs 'mean' and 'std', three numbers each")
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        _fail(source, f"{where}: 'normalization' needs three means and three positive stds (RGB)")
    return mean, std


TASK_KEYS = {"name", "image_size", "classes", "teachers", "data_format", "released_checkpoints", "source", "images"}
TEACHER_KEYS = {"name", "classes", "train", "test", "shipped_checkpoint", "checkpoint", "onnx", "normalization"}


def parse_task(raw: dict, source: str = "<task>") -> TaskSpec:
    """Check every field of a spec; a fault gives one line naming the field (and the value)."""
    if not isinstance(raw, dict):
        _fail(source, "a task spec must be a mapping")
    if "released_normalization" in raw:
        _fail(source, "'released_normalization' is no longer read: released models are normalised with the "
                      "statistics of the images they are evaluated on, as the original project did; remove it")
    unknown = sorted(set(raw) - TASK_KEYS)
    if unknown:
        _fail(source, f"unknown key '{unknown[0]}' (a task has {', '.join(sorted(TASK_KEYS))})")
    for key in ("name", "image_size", "classes", "teachers"):
        if key not in raw:
            _fail(source, f"missing key '{key}'")
    name = str(raw["name"])
    if not NAME_PATTERN.match(name):
        _fail(source, f"name: '{name}' must be letters, digits, '_' or '-' (it names folders and files)")
    classes = raw["classes"]
    if not isinstance(classes, list) or not classes:
        _fail(source, "'classes' must be a non-empty list of {id, name}")
    try:
        class_ids = tuple(int(c["id"]) for c in classes)
        class_names = tuple(str(c["name"]) for c in classes)
    except (KeyError, TypeError, ValueError):
        _fail(source, "every class needs an integer 'id' and a 'name'")
    if _duplicates(class_ids):
        _fail(source, f"classes: id {_duplicates(class_ids)[0]} appears more than once")
    if _duplicates(class_names):
        _fail(source, f"classes: name '{_duplicates(class_names)[0]}' appears more than once")
    if not isinstance(raw["teachers"], list):
        _fail(source, "'teachers' must be a list")
    teachers = []
    for i, t in enumerate(raw["teachers"]):
        where = f"teachers[{i + 1}]" + (f" '{t['name']}'" if isinstance(t, dict) and "name" in t else "")
        if not isinstance(t, dict):
            _fail(source, f"{where}: a teacher must be a mapping")
        unknown = sorted(set(t) - TEACHER_KEYS)
        if unknown:
            _fail(source, f"{where}: unknown key '{unknown[0]}' (a teacher has {', '.join(sorted(TEACHER_KEYS))})")
        try:
            ids = tuple(int(c) for c in t["classes"])
            tname = str(t["name"])
        except (KeyError, TypeError, ValueError):
            _fail(source, f"{where}: needs a 'name' and a list of integer class ids 'classes'")
        if _duplicates(ids):
            _fail(source, f"{where}: class id {_duplicates(ids)[0]} appears twice in its 'classes'")
        if len(ids) < 2:
            _fail(source, f"{where}: a teacher needs at least two classes")
        missing = sorted(set(ids) - set(class_ids))
        if missing:
            _fail(source, f"{where}: class ids {missing} are not in 'classes'")
        mean, std = _normalisation(source, where, t.get("normalization"))
        if t.get("onnx") is not None and t.get("checkpoint") is not None:
            _fail(source, f"{where}: give 'checkpoint' (a .pth of the course CNN) or 'onnx' (any classifier), not both")
        if t.get("onnx") is not None and not str(t["onnx"]).lower().endswith(".onnx"):
            _fail(source, f"{where}: onnx: '{t['onnx']}' must name an .onnx file")
        teachers.append(TeacherSpec(
            name=tname, class_ids=ids, train_file=str(t.get("train", f"{tname}/train.pth")),
            test_file=str(t.get("test", f"{tname}/test.pth")), shipped_checkpoint=t.get("shipped_checkpoint"),
            checkpoint=t.get("checkpoint"), onnx=str(t["onnx"]) if t.get("onnx") is not None else None,
            mean=mean, std=std))
    if len(teachers) < 2:
        _fail(source, "a task needs at least two teachers")
    if _duplicates([t.name for t in teachers]):
        _fail(source, f"teachers: name '{_duplicates([t.name for t in teachers])[0]}' appears more than once")
    covered = {c for t in teachers for c in t.class_ids}
    if covered != set(class_ids):
        _fail(source, f"classes {sorted(set(class_ids) - covered)} belong to no teacher")
    size = raw["image_size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 8 or size % 4:
        _fail(source, f"image_size: {size!r} must be an integer >= 8 divisible by 4")
    fmt = raw.get("data_format", "torch")
    if fmt not in DATA_FORMATS:
        _fail(source, f"data_format: '{fmt}' must be one of {', '.join(DATA_FORMATS)}")
    kind = raw.get("source")
    if kind is not None and kind not in SOURCES:
        _fail(source, f"source: '{kind}' must be one of {', '.join(SOURCES)}")
    if kind == "image_folder" and not raw.get("images"):
        _fail(source, "images: source image_folder needs 'images', the folder holding train/ and test/")
    return TaskSpec(
        name=name, image_size=size, class_ids=class_ids, class_names=class_names,
        teachers=tuple(teachers), data_format=fmt, released_checkpoints=raw.get("released_checkpoints"),
        source=kind, images=str(raw["images"]) if raw.get("images") else None,
    )


def require_distillation(spec: TaskSpec, method: str, origin: str = "params.yaml") -> None:
    """The rule for ONNX teachers: they have no weights to merge, so only distillation passes on what
    they know. ``moe`` would train their experts from nothing, with no teacher behind them."""
    if spec.onnx_teachers and method == "moe":
        raise MoEError(f"{origin}: method: moe cannot learn from task {spec.name}'s ONNX teacher "
                       f"'{spec.onnx_teachers[0]}' (an ONNX teacher has no weights to merge, only answers): "
                       "use method: distill")


def load_task(path: str | Path) -> TaskSpec:
    path = Path(path)
    if not path.is_file():
        raise MoEError(f"{path}: task spec not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise MoEError(f"{path}: not valid YAML{where} ({problem})") from None
    spec = parse_task(raw, str(path))
    if path.suffix in (".yaml", ".yml") and path.stem != spec.name:
        raise MoEError(f"{path}: name: '{spec.name}' differs from the file's name '{path.stem}' (outputs are "
                       f"named after the task: make them the same)")
    return spec


def load_task_list(tasks: dict[str, str], tasks_dir: str | Path, origin: str = "params.yaml") -> list[TaskSpec]:
    """Every task of the pipeline's list (name -> what its fetch reads), each spec loaded and checked,
    each input there."""
    specs = []
    for name, inputs in tasks.items():
        specs.append(load_task(Path(tasks_dir) / f"{name}.yaml"))
        if not Path(inputs).exists():
            raise MoEError(f"{origin}: tasks: {name}: '{inputs}' not found (what task {name}'s fetch reads)")
    return specs
