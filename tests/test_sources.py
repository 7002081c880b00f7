"""Every source, on local files: demo, archive (zip and folder), cas771 (gdown stubbed), cifar100."""

import io
import json
import pickle
import tarfile

import numpy as np
import pytest
import torch

from moe.base.data import load_task_split
from moe.base.errors import MoEError
from moe.base.formats import safe_load
from moe.sources.fetching import DRIVE_FILES, fetch

from .conftest import SHARED_ARCHIVE


def test_demo_source_is_deterministic(tmp_path, task_a):
    fetch(task_a, "demo", tmp_path / "one", demo_train=3, demo_test=2, seed=4)
    fetch(task_a, "demo", tmp_path / "two", demo_train=3, demo_test=2, seed=4)
    for t in task_a.teachers:
        a, b = safe_load(tmp_path / "one" / t.train_file), safe_load(tmp_path / "two" / t.train_file)
        assert np.array_equal(a["data"], b["data"]) and a["labels"] == b["labels"]


def _pickle_batch(images, labels):
    return pickle.dumps({b"data": images.transpose(0, 3, 1, 2).reshape(len(images), -1), b"fine_labels": labels,
                         b"coarse_labels": [0] * len(labels)}, protocol=2)


def _cifar_tar(path, payload=None):
    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tar:
        for part, n in (("train", 400), ("test", 200)):
            labels = [int(x) for x in np.arange(n) % 100]
            data = payload or _pickle_batch(rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8), labels)
            info = tarfile.TarInfo(f"cifar-100-python/{part}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_cifar100_builds_task_a_files_exactly(tmp_path, task_a):
    _cifar_tar(tmp_path / "cifar-100-python.tar.gz")
    fetch(task_a, "cifar100", tmp_path / "out", archive=str(tmp_path / "cifar-100-python.tar.gz"))
    t1 = safe_load(tmp_path / "out" / task_a.teachers[0].train_file)
    assert set(t1["labels"]) == {47, 52, 56, 59, 96} and len(t1["labels"]) == 20
    assert all(i % 100 == lab for i, lab in zip(t1["indices"], t1["labels"]))  # indices into the official split
    assert isinstance(t1["data"], np.ndarray) and t1["data"].shape == (20, 32, 32, 3)
    test = load_task_split(task_a, tmp_path / "out", "test")
    assert len(test) == 30 and torch.equal(torch.bincount(test.labels), torch.full((15,), 2))


def test_cifar100_pickle_payload_refused(tmp_path, task_a):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    _cifar_tar(tmp_path / "evil.tar.gz", payload=pickle.dumps(Evil()))
    with pytest.raises(MoEError, match="evil.tar.gz: not a usable CIFAR-100 python archive .*refuses global builtins.print"):
        fetch(task_a, "cifar100", tmp_path / "out", archive=str(tmp_path / "evil.tar.gz"))
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not SHARED_ARCHIVE.exists(), reason="stand-in archive absent (exists beside the project's CI only)")
def test_archive_source_reads_the_real_standin(tmp_path, task_b):
    fetch(task_b, "archive", tmp_path / "B", archive=str(SHARED_ARCHIVE))
    val = load_task_split(task_b, tmp_path / "B", "test")
    assert len(val) == 600 and torch.equal(torch.bincount(val.labels), torch.full((12,), 50))


def test_cas771_downloads_pins_sha256_and_verifies(tmp_path, task_a):
    src = tmp_path / "src"
    fetch(task_a, "demo", src, demo_train=2, demo_test=1, seed=0)
    import zipfile
    zips = {}
    for name in DRIVE_FILES:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            if name == "data":
                for p in src.rglob("*.pth"):
                    zf.writestr(p.relative_to(src).as_posix(), p.read_bytes())
            zf.writestr("__MACOSX/._junk", b"x")
        zips[DRIVE_FILES[name]] = buf.getvalue()
    calls = []

    def fake_gdown(file_id, out):
        calls.append(file_id)
        out.write_bytes(zips[file_id])

    downloads = tmp_path / "downloads"
    fetch(task_a, "cas771", tmp_path / "A", downloads=downloads, downloader=fake_gdown)
    pins = json.loads((downloads / "SHA256SUMS.json").read_text())
    assert set(pins) == {"data.zip", "best_models.zip"} and len(calls) == 2
    fetch(task_a, "cas771", tmp_path / "A2", downloads=downloads, downloader=fake_gdown)
    assert len(calls) == 2  # verified copies are not fetched again

    (downloads / "data.zip").write_bytes(b"tampered")
    zips[DRIVE_FILES["data"]] = b"a different archive"
    with pytest.raises(MoEError, match="sha256 .* differs from the one recorded"):
        fetch(task_a, "cas771", tmp_path / "A3", downloads=downloads, downloader=fake_gdown)
    assert not list(downloads.glob(".*.part"))


def test_cas771_refusal_says_how_to_place_by_hand(tmp_path, task_a):
    def refused(file_id, out):
        out.write_bytes(b"partial")
        raise OSError("Too many users have viewed or downloaded this file recently")

    with pytest.raises(MoEError, match="download https://drive.google.com/file/d/.* by hand, then use source 'archive'"):
        fetch(task_a, "cas771", tmp_path / "A", downloads=tmp_path / "dl", downloader=refused)
    assert not list((tmp_path / "dl").iterdir())  # no half-downloaded file left behind


def test_archive_source_reads_an_unpacked_folder(tmp_path, task_b):
    fetch(task_b, "demo", tmp_path / "unpacked", demo_train=2, demo_test=1, seed=0)
    (tmp_path / "unpacked" / "__MACOSX").mkdir()
    (tmp_path / "unpacked" / "__MACOSX" / "._x").write_bytes(b"junk")
    fetch(task_b, "archive", tmp_path / "B", archive=str(tmp_path / "unpacked"))
    assert len(load_task_split(task_b, tmp_path / "B", "train")) == 12 * 2
    assert not (tmp_path / "B" / "__MACOSX").exists()
