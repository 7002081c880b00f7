"""Reading and writing the archive's files exactly, safely, and atomically.

A .pth from outside is a pickle: it is always loaded with ``weights_only=True``. The Task A files
hold numpy arrays, so numpy's array reconstruction is allow-listed (under its numpy 1.x and 2.x
module names) together with the ndarray and dtype classes, and nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import re
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from .errors import MissingFile, MoEError

# --------------------------------------------------------------------------- atomic outputs


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def build_folder(out_dir: str | Path, build):
    """Run ``build(staging)`` in a fresh folder beside ``out_dir``; replace ``out_dir`` with it only on
    success, so a failed build leaves the old folder and an old file never survives a new build."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        result = build(staging)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
        return result
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def save_torch(obj, path: str | Path) -> None:
    # Through a file handle: torch.save names the archive's inner folder after a path it is given,
    # and the temporary name is random, so the same object would give different bytes (and hashes).
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)


def save_json(obj, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def load_json(path: str | Path):
    """A JSON file this project wrote; a missing or broken one is one line naming it."""
    path = Path(path)
    if not path.is_file():
        raise MissingFile(path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MoEError(f"{path}: not valid JSON ({e})") from None


def save_text(text: str, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_csv(rows: list[dict], path: str | Path) -> None:
    """Rows of equal keys as CSV (the header from the first row); DVC plots read it."""
    lines = [",".join(rows[0])] if rows else []
    lines += [",".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in r.values()) for r in rows]
    save_text("\n".join(lines) + "\n", path)


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- safe loading

try:  # numpy 2.x
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct

# Archives were written under either numpy; the pickle names the function by its module path then.
_NUMPY_GLOBALS = [
    (_reconstruct, "numpy.core.multiarray._reconstruct"),
    (_reconstruct, "numpy._core.multiarray._reconstruct"),
    np.ndarray,
    np.dtype,
    np.dtypes.UInt8DType,
    np.dtypes.Int64DType,
]


def _first_sentence(message: str) -> str:
    """The first sentence of an error message, whole (never cut mid-word)."""
    line = message.strip().splitlines()[0] if message.strip() else ""
    return re.split(r"(?<=[.!?])\s", line, maxsplit=1)[0].rstrip(".")


def _kind_of_file(path: Path) -> str:
    """'zip' (what torch.save writes), 'truncated zip', 'pickle' (the legacy format) or 'other'."""
    with open(path, "rb") as f:
        head = f.read(4)
    if zipfile.is_zipfile(path):
        return "zip"
    if head.startswith(b"PK\x03\x04"):
        return "truncated zip"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    return "other"


def safe_load(path: str | Path):
    """torch.load with weights_only=True and numpy arrays allowed; one clear error otherwise."""
    path = Path(path)
    if not path.is_file():
        raise MissingFile(path)
    kind = _kind_of_file(path)
    if kind == "other":
        raise MoEError(f"{path}: not a PyTorch checkpoint (the file is neither the zip archive torch.save writes "
                       "nor a legacy pickle)")
    if kind == "truncated zip":
        raise MoEError(f"{path}: not a readable PyTorch file: its zip archive ends early (an interrupted download "
                       "or copy?)")
    try:
        with torch.serialization.safe_globals(_NUMPY_GLOBALS), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        lines = str(e).strip().splitlines()
        detail = next((ln.strip() for ln in lines if "GLOBAL" in ln), "")
        if detail:
            raise MoEError(f"{path}: refused to load: the file asks to run or build objects that a plain "
                           f"checkpoint never needs ({detail})") from None
        raise MoEError(f"{path}: not a PyTorch checkpoint (a pickle that torch.save did not write, or a corrupt "
                       "one)") from None
    except Exception as e:  # noqa: BLE001 - a corrupt file can fail anywhere in the unpickler (KeyError, IndexError, ...)
        if kind == "pickle":
            raise MoEError(f"{path}: not a PyTorch checkpoint (a pickle that torch.save did not write, or a corrupt "
                           "one)") from None
        raise MoEError(f"{path}: not a readable PyTorch file: the file is corrupt "
                       f"({_first_sentence(str(e)) or type(e).__name__})") from None


# --------------------------------------------------------------------------- split files


def read_split(path: str | Path, image_size: int, allowed_ids) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (images N x 3 x H x W uint8, label ids int64) from one archive split file."""
    obj = safe_load(path)
    if not isinstance(obj, dict) or "data" not in obj or "labels" not in obj:
        keys = sorted(obj.keys()) if isinstance(obj, dict) else type(obj).__name__
        raise MoEError(f"{path}: expected a dict with keys 'data' and 'labels', found {keys}")
    data, labels = obj["data"], obj["labels"]
    if isinstance(data, (list, tuple)):
        if not all(isinstance(d, (np.ndarray, torch.Tensor)) for d in data):
            raise MoEError(f"{path}: 'data' must hold numpy arrays or tensors")
        data = np.stack([np.asarray(d) for d in data]) if len(data) else np.zeros((0, image_size, image_size, 3), np.uint8)
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(np.ascontiguousarray(data))
    if not isinstance(data, torch.Tensor):
        raise MoEError(f"{path}: 'data' has unsupported type {type(data).__name__}")
    want = (image_size, image_size, 3)
    if data.dim() != 4 or tuple(data.shape[1:]) != want:
        raise MoEError(f"{path}: images have shape {tuple(data.shape[1:])}, expected {want} (height, width, channels)")
    if data.dtype != torch.uint8:
        raise MoEError(f"{path}: images have dtype {data.dtype}, expected uint8")
    try:
        labels = torch.as_tensor(labels if not isinstance(labels, np.ndarray) else labels.tolist(), dtype=torch.int64)
    except (TypeError, ValueError, RuntimeError):
        raise MoEError(f"{path}: 'labels' must be a list or tensor of integers") from None
    if labels.dim() != 1 or len(labels) != len(data):
        raise MoEError(f"{path}: {len(labels)} labels for {len(data)} images")
    bad = sorted(set(labels.tolist()) - set(allowed_ids))
    if bad:
        raise MoEError(f"{path}: label ids {bad[:10]} are not in this file's class table {sorted(allowed_ids)}")
    return data.permute(0, 3, 1, 2).contiguous(), labels


def write_split(path: str | Path, images: torch.Tensor, labels: torch.Tensor, data_format: str,
                indices: list[int] | None = None) -> None:
    """Write images (N x 3 x H x W uint8) in the archive's own layout for ``data_format``."""
    hwc = images.permute(0, 2, 3, 1).contiguous()
    if data_format == "numpy":
        obj = {"data": hwc.numpy(), "labels": [int(x) for x in labels],
               "indices": list(indices) if indices is not None else list(range(len(labels)))}
    else:
        obj = {"data": hwc, "labels": labels.to(torch.int64).clone()}
    save_torch(obj, path)


# --------------------------------------------------------------------------- checkpoints


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A checkpoint is a bare state_dict or a dict holding one under 'model_state_dict'."""
    obj = safe_load(path)
    if isinstance(obj, dict) and "model_state_dict" in obj:
        obj = obj["model_state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise MoEError(f"{path}: not a model checkpoint (expected a state_dict of tensors)")
    return obj


def check_state_dict(path, state: dict, expected: dict[str, torch.Size], what: str) -> None:
    """Compare keys and shapes with a reference model; say which differ."""
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {missing[:3]}{'...' if len(missing) > 3 else ''}")
        if extra:
            parts.append(f"unexpected {extra[:3]}{'...' if len(extra) > 3 else ''}")
        raise MoEError(f"{path}: not a {what} checkpoint: {'; '.join(parts)}")
    for k, shape in expected.items():
        if tuple(state[k].shape) != tuple(shape):
            raise MoEError(f"{path}: {k} has shape {tuple(state[k].shape)}, expected {tuple(shape)} for {what}")
