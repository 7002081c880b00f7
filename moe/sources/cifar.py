"""Build a task's files from the public CIFAR-100 python archive (``cifar-100-python.tar.gz``).

The archive's batches are Python pickles; they are read by an unpickler that allows numpy's array
reconstruction (and the bytes decoder protocol-2 pickles use) and nothing else, so a tampered archive
cannot run code.
"""

from __future__ import annotations

import _codecs
import io
import pickle
import tarfile
import urllib.request
from pathlib import Path

import numpy as np
import torch

from ..base.errors import MoEError
from ..base.formats import _reconstruct, file_digest, write_split
from ..base.tasks import TaskSpec

CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"): _reconstruct, ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
            ("_codecs", "encode"): _codecs.encode}  # how protocol-2 pickles from Python 3 store bytes


class _NumpyOnly(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[module, name]
        raise pickle.UnpicklingError(f"refuses global {module}.{name}")


def download_cifar100(target: Path, url: str = CIFAR100_URL) -> Path:
    if target.exists() and file_digest(target, "md5") == CIFAR100_MD5:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part")
    try:
        urllib.request.urlretrieve(url, tmp)
        digest = file_digest(tmp, "md5")
        if digest != CIFAR100_MD5:
            raise MoEError(f"{url}: downloaded file has md5 {digest}, expected {CIFAR100_MD5}")
        tmp.replace(target)
        return target
    except OSError as e:
        raise MoEError(f"could not download {url} ({e}); place cifar-100-python.tar.gz by hand and set "
                       f"the 'archive' parameter to its path") from None
    finally:
        tmp.unlink(missing_ok=True)


def read_cifar100(archive: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{'train'|'test': (images N x 32 x 32 x 3 uint8, fine labels)} from the tar.gz."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            out = {}
            for part in ("train", "test"):
                member = next((m for m in tar.getmembers() if m.name.endswith(f"cifar-100-python/{part}")), None)
                if member is None or not member.isfile():
                    raise MoEError(f"{archive}: missing cifar-100-python/{part}")
                raw = _NumpyOnly(io.BytesIO(tar.extractfile(member).read()), encoding="bytes").load()
                data = np.asarray(raw[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
                out[part] = (np.ascontiguousarray(data), np.asarray(raw[b"fine_labels"], dtype=np.int64))
            return out
    except (tarfile.TarError, EOFError, OSError, KeyError, ValueError, pickle.UnpicklingError) as e:
        raise MoEError(f"{archive}: not a usable CIFAR-100 python archive ({e})") from None


def build_task_from_cifar100(spec: TaskSpec, archive: Path, root: Path) -> int:
    """Write each teacher's train/test file: its classes, official split, fine ids, indices. Returns files written."""
    if spec.image_size != 32:
        raise MoEError(f"task {spec.name}: CIFAR-100 images are 32x32, the task wants {spec.image_size}")
    splits = read_cifar100(archive)
    bad = sorted(c for c in spec.class_ids if not 0 <= c < 100)
    if bad:
        raise MoEError(f"task {spec.name}: class ids {bad} are not CIFAR-100 fine labels")
    for t in spec.teachers:
        for part, rel in (("train", t.train_file), ("test", t.test_file)):
            images, labels = splits[part]
            idx = np.nonzero(np.isin(labels, t.class_ids))[0]
            write_split(root / rel, torch.from_numpy(images[idx]).permute(0, 3, 1, 2),
                        torch.from_numpy(labels[idx]), spec.data_format, indices=idx.tolist())
    return 2 * len(spec.teachers)
