"""Task specs: every hole closed with one line naming the field; teacher checkpoints checked before
any teacher trains; any number of teachers and classes in the demo generator."""

import dataclasses

import pytest
import torch
import yaml

from moe.base.data import image_key, load_task_split, prepare_task_data, prepare_teacher_data, shared_class_images
from moe.base.errors import MoEError
from moe.base.tasks import load_task, parse_task
from moe.core.checkpoints import save_model
from moe.core.models import TeacherCNN
from moe.core.teachers import TeacherSettings, obtain_teachers
from moe.sources.demo import class_attributes, generate_demo_archive
from moe.sources.fetching import fetch

P = TeacherSettings(epochs=1, lr=0.001, batch_size=8, label_smoothing=0.0, warmup_epochs=0.0, low_res_epochs=0, bn_recalibration_batches=2,
                    low_res_scale=0.5, weight_decay=0.0, weight_decay_scope="all", val_fraction=0.25,
                    max_train_per_class=0, seed=0)


def spec(**changes):
    raw = {"name": "t", "image_size": 16, "classes": [{"id": i, "name": f"c{i}"} for i in range(4)],
           "teachers": [{"name": "a", "classes": [0, 1, 2]}, {"name": "b", "classes": [2, 3]}]}
    raw.update(changes)
    return raw


@pytest.mark.parametrize("changes, message", [
    ({"teachers": [{"name": "a", "classes": [0, 1, 1]}, {"name": "b", "classes": [2, 3]}]},
     "teachers[1] 'a': class id 1 appears twice in its 'classes'"),
    ({"teachers": [{"name": "a", "classes": [0, 1]}, {"name": "a", "classes": [2, 3]}]},
     "teachers: name 'a' appears more than once"),
    ({"classes": [{"id": 0, "name": "x"}, {"id": 1, "name": "x"}, {"id": 2, "name": "y"}, {"id": 3, "name": "z"}]},
     "classes: name 'x' appears more than once"),
    ({"classes": [{"id": 0, "name": "w"}, {"id": 3, "name": "x"}, {"id": 2, "name": "y"}, {"id": 3, "name": "z"}]},
     "classes: id 3 appears more than once"),
    ({"name": "../escaped"}, "name: '../escaped' must be letters, digits, '_' or '-'"),
    ({"image_size": 30}, "image_size: 30 must be an integer >= 8 divisible by 4"),
    ({"source": "ftp"}, "source: 'ftp' must be one of demo, archive, cas771, cifar100, image_folder"),
    ({"source": "image_folder"}, "images: source image_folder needs 'images'"),
    ({"teachers": [{"name": "a", "classes": [0, 1, 2, 3], "normalization": {"mean": [0.5]}},
                   {"name": "b", "classes": [2, 3]}]}, "teachers[1] 'a': 'normalization' needs 'mean' and 'std'"),
    ({"teachers": [{"name": "a", "classes": [0, 1, 2, 3], "checkpiont": "x.pth"}, {"name": "b", "classes": [2, 3]}]},
     "teachers[1] 'a': unknown key 'checkpiont'"),
    ({"teachers": [{"name": "a", "classes": [0, 1, 2, 9]}, {"name": "b", "classes": [2, 3]}]},
     "teachers[1] 'a': class ids [9] are not in 'classes'"),
])
def test_spec_holes_give_one_line_naming_the_field(changes, message):
    with pytest.raises(MoEError) as e:
        parse_task(spec(**changes), "tasks/t.yaml")
    assert str(e.value) == f"tasks/t.yaml: {message}" or str(e.value).startswith(f"tasks/t.yaml: {message}")
    assert "\n" not in str(e.value)


def test_name_must_match_file_and_yaml_errors_give_the_line(tmp_path):
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(spec()))
    with pytest.raises(MoEError, match=r"other.yaml: name: 't' differs from the file's name 'other'"):
        load_task(tmp_path / "other.yaml")
    (tmp_path / "t.yaml").write_text("name: t\nimage_size: 16\nclasses: [\n  {id: 0, name: a}\n teachers: x\n")
    with pytest.raises(MoEError, match=r"t.yaml: not valid YAML at line \d+, column \d+"):
        load_task(tmp_path / "t.yaml")


def test_image_size_that_does_not_match_the_files_fails_at_fetch(tmp_path):
    s16 = parse_task(spec())
    generate_demo_archive(s16, tmp_path / "archive", 4, 2, seed=0)
    s32 = parse_task(spec(image_size=32))
    with pytest.raises(MoEError, match=r"a/train.pth: images have shape \(16, 16, 3\), expected \(32, 32, 3\)"):
        fetch(s32, "archive", tmp_path / "data", archive=str(tmp_path / "archive"))
    assert not (tmp_path / "data").exists()


def test_shared_class_keeps_every_distinct_image(tmp_path):
    s = parse_task(spec())
    generate_demo_archive(s, tmp_path, 4, 2, seed=0)
    # teacher b gets two images of the shared class 2 that teacher a does not have, and repeats one of a's
    a = torch.load(tmp_path / "a/train.pth", weights_only=True)
    b = torch.load(tmp_path / "b/train.pth", weights_only=True)
    new = torch.randint(0, 255, (2, 16, 16, 3), dtype=torch.uint8)
    a_img2 = a["data"][a["labels"] == 2][:1]
    torch.save({"data": torch.cat([b["data"][b["labels"] == 3], new, a_img2]),
                "labels": torch.tensor([3] * 4 + [2, 2, 2])}, tmp_path / "b/train.pth")
    merged = load_task_split(s, tmp_path, "train")
    assert int((merged.labels == s.class_index(2)).sum()) == 4 + 2  # a's four, b's two new, the repeat once
    assert shared_class_images(s, tmp_path, "train") == {"c2": (4 + 3, 6)}  # what fetch reports


def test_teachers_trained_here_never_see_the_moes_validation_images(tmp_path):
    s = parse_task(spec())
    generate_demo_archive(s, tmp_path, 12, 2, seed=0)
    task = prepare_task_data(s, tmp_path, 0.25, seed=5)

    def keys(split, ids):
        return [image_key(img, ids[int(c)]) for img, c in zip(split.images, split.labels)]

    val, train = set(keys(task.val, s.class_ids)), set(keys(task.train, s.class_ids))
    seen_val = set()
    for i, t in enumerate(s.teachers):
        tr, va, te = prepare_teacher_data(s, tmp_path, i, task)
        assert not set(keys(tr, t.local_order)) & val  # no MoE validation image in any teacher's training
        assert set(keys(va, t.local_order)) <= val and set(keys(tr, t.local_order)) <= train
        assert len(tr) + len(va) == 12 * len(t.class_ids)  # every image of its file, on one side
        seen_val |= set(keys(va, t.local_order))
    assert seen_val == val  # the shared class's held-out images are held out by both its teachers
    # a different seed holds out different images, so the teachers' splits follow the MoE's seed
    other = prepare_task_data(s, tmp_path, 0.25, seed=6)
    assert set(keys(other.val, s.class_ids)) != val
    # a per-class limit draws from the images left after the hold-out: every class keeps its limit
    limited = prepare_task_data(s, tmp_path, 0.25, seed=5, max_train_per_class=4)
    for i, t in enumerate(s.teachers):
        tr, va, _ = prepare_teacher_data(s, tmp_path, i, limited, max_train_per_class=4, seed=5)
        assert torch.bincount(tr.labels).tolist() == [4] * len(t.class_ids)
        assert not set(keys(tr, t.local_order)) & set(keys(limited.val, s.class_ids))


def _data(tmp_path, s):
    generate_demo_archive(s, tmp_path, 8, 4, seed=0)
    return tmp_path


def test_checkpoint_typo_is_an_error_not_a_new_teacher(tmp_path):
    s = parse_task(spec(teachers=[{"name": "a", "classes": [0, 1, 2], "checkpoint": str(tmp_path / "typo.pth")},
                                  {"name": "b", "classes": [2, 3]}]))
    with pytest.raises(MoEError, match=r"typo.pth: checkpoint of task t, teacher 'a' not found"):
        obtain_teachers(s, _data(tmp_path, s), P, torch.device("cpu"), "fp32")


def test_checkpoint_of_other_classes_or_shape_is_refused_before_any_training(tmp_path):
    said = []
    other = tmp_path / "other.pth"
    save_model(other, TeacherCNN(3), [0.5] * 3, [0.25] * 3, [5, 6, 7], ["x", "y", "z"])
    s = parse_task(spec(teachers=[{"name": "a", "classes": [0, 1, 2]},
                                  {"name": "b", "classes": [2, 3], "checkpoint": str(other)}]))
    with pytest.raises(MoEError, match=r"was trained on class ids \[5, 6, 7\]|has shape"):
        obtain_teachers(s, _data(tmp_path, s), P, torch.device("cpu"), "fp32", say=said.append)
    assert not said  # teacher a was not trained first
    wrong = tmp_path / "wrong.pth"
    save_model(wrong, TeacherCNN(4), [0.5] * 3, [0.25] * 3, [2, 3], ["c2", "c3"])
    s = parse_task(spec(teachers=[{"name": "a", "classes": [0, 1, 2]},
                                  {"name": "b", "classes": [2, 3], "checkpoint": str(wrong)}]))
    with pytest.raises(MoEError, match=r"wrong.pth: classifier.3.weight has shape \(4, 512\), expected \(2, 512\)"):
        obtain_teachers(s, tmp_path, P, torch.device("cpu"), "fp32", say=said.append)
    assert not said


def test_teacher_is_scored_with_the_normalisation_it_states(tmp_path):
    given = tmp_path / "given.pth"
    torch.manual_seed(0)
    torch.save(TeacherCNN(2).state_dict(), given)  # a bare state_dict: no metadata of its own
    stated = {"mean": [0.1, 0.2, 0.3], "std": [0.4, 0.5, 0.6]}
    s = parse_task(spec(teachers=[{"name": "a", "classes": [0, 1, 2]},
                                  {"name": "b", "classes": [2, 3], "checkpoint": str(given), "normalization": stated}]))
    runs = []
    teachers, mean, std = obtain_teachers(s, _data(tmp_path, s), P, torch.device("cpu"), "fp32",
                                          progress_for=lambda name, runs_after: runs.append((name, runs_after)))
    assert runs == [("a", 0)]  # only teacher a trains here: its progress counts no other after it
    assert teachers[1].mean == stated["mean"] and teachers[1].std == stated["std"] and teachers[1].origin == str(given)
    assert teachers[0].mean == mean and teachers[0].origin == "trained"


def test_teachers_trained_here_take_their_first_epochs_on_smaller_images(tmp_path):
    """teacher.low_res_epochs reaches a teacher's training, at the shared low_res_scale."""
    class Sizes:
        def __init__(self):
            self.planned, self.trained_on = [], []

        def start_epoch(self, epoch, num_epochs, num_batches, image_sizes):
            self.planned = image_sizes

        def advance(self, loss, accuracy):
            pass

        def end_epoch(self, record):
            self.trained_on.append(record["image_size"])

    s = parse_task(spec())
    seen = {}
    obtain_teachers(s, _data(tmp_path, s), dataclasses.replace(P, epochs=3, low_res_epochs=2), torch.device("cpu"),
                    "fp32", progress_for=lambda name, runs_after: seen.setdefault(name, Sizes()))
    assert [(k, v.planned, v.trained_on) for k, v in seen.items()] == [("a", [8, 8, 16], [8, 8, 16]),
                                                                        ("b", [8, 8, 16], [8, 8, 16])]


def test_demo_generator_takes_many_teachers_and_large_teachers(tmp_path):
    raw = {"name": "big", "image_size": 16, "classes": [{"id": i, "name": f"c{i}"} for i in range(30)],
           "teachers": [{"name": f"t{k}", "classes": list(range(3 * k, 3 * k + 3))} for k in range(10)]
           + [{"name": "wide", "classes": list(range(14))}]}
    s = parse_task(raw)
    attrs = class_attributes(s, seed=0)
    assert len(set(attrs)) == 30  # every class looks different
    groups = {(a[0], a[3]) for a, cid in zip(attrs, s.class_ids) if s.owners(cid)[0] < 10}
    assert len(groups) == 10  # ten teachers, ten distinct group cues (shape, background)
    generate_demo_archive(s, tmp_path, 2, 1, seed=0)
    assert len(load_task_split(s, tmp_path, "test")) == 30


def test_image_folder_unreadable_or_missing_class_names_the_file(tmp_path):
    from PIL import Image

    from moe.sources.image_folder import build_from_image_folder

    s = parse_task(spec(source="image_folder", images=str(tmp_path / "img")))
    for part in ("train", "test"):
        for name in s.class_names:
            (tmp_path / "img" / part / name).mkdir(parents=True)
            Image.new("RGB", (16, 16), (9, 9, 9)).save(tmp_path / "img" / part / name / "0.png")
    (tmp_path / "img" / "train" / "c2" / "1.jpg").write_text("not an image")
    with pytest.raises(MoEError, match=r"c2/1.jpg: not a readable image"):
        build_from_image_folder(s, tmp_path / "img", tmp_path / "out")
    (tmp_path / "img" / "train" / "c2" / "1.jpg").unlink()
    (tmp_path / "img" / "test" / "c3" / "0.png").unlink()
    (tmp_path / "img" / "test" / "c3").rmdir()
    with pytest.raises(MoEError, match=r"test/c3: folder not found \(class 'c3' of task t needs its test images"):
        build_from_image_folder(s, tmp_path / "img", tmp_path / "out")


def test_task_list_names_a_missing_input(tmp_path):
    from moe.base.tasks import load_task_list

    (tmp_path / "t.yaml").write_text(yaml.safe_dump(spec()))
    assert [s.name for s in load_task_list({"t": str(tmp_path / "t.yaml")}, tmp_path)] == ["t"]
    with pytest.raises(MoEError, match=r"params.yaml: tasks: t: '.*inputs/t' not found"):
        load_task_list({"t": str(tmp_path / "inputs" / "t")}, tmp_path)
    with pytest.raises(MoEError, match=r"u.yaml: task spec not found"):
        load_task_list({"u": str(tmp_path)}, tmp_path)
