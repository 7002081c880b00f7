"""Where a task's files come from. Every source produces the same thing: a folder laid out like the
original archive (``data/Task*/...``, optionally ``best_models/...`` and ``teachers/...``).

    demo      generated from the seed, offline, in seconds
    archive   a local zip (or an unpacked folder) in the original layout
    cas771    the original archives from Google Drive, fetched with gdown, sha256-pinned on first use
    cifar100  a 32x32 task built from the public CIFAR-100 archive (local copy or official URL, md5-checked)
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import time
import zipfile
from pathlib import Path, PurePosixPath

from ..base.data import load_task_split, shared_class_images
from ..base.errors import MoEError
from ..base.formats import build_folder, file_digest
from ..base.params import SOURCES
from ..base.tasks import TaskSpec
from .cifar import build_task_from_cifar100, download_cifar100
from .demo import generate_demo_archive
from .image_folder import build_from_image_folder


# The original course archives on Google Drive (see the formats reference).
DRIVE_FILES = {"data": "12KVxl9n577vwoZ1WPn6U70jD37_UA0y-", "best_models": "1GQmdfksDEUIoxiJAMBYRZ-oZw0Pa0F8c"}


def task_members(spec: TaskSpec) -> tuple[list[str], list[str]]:
    """(files the task needs, folders it may use) relative to the archive root."""
    required = [p for t in spec.teachers for p in (t.train_file, t.test_file)]
    optional = [t.shipped_checkpoint for t in spec.teachers if t.shipped_checkpoint]
    folders = [spec.released_checkpoints] if spec.released_checkpoints else []
    return required, optional + folders


def _is_junk(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return "__MACOSX" in parts or any(p.startswith("._") for p in parts) or PurePosixPath(name).name == ".DS_Store"


def _check_member(archive: Path, info: zipfile.ZipInfo) -> None:
    name = info.filename
    p = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or "\\" in name:
        raise MoEError(f"{archive}: refuses member '{name}': absolute path")
    if ".." in p.parts:
        raise MoEError(f"{archive}: refuses member '{name}': it would be written outside the target folder")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise MoEError(f"{archive}: refuses member '{name}': symbolic link")


def _wanted(name: str, spec: TaskSpec) -> str | None:
    """The member's path relative to the archive root if this task uses it, else None.

    Archives are sometimes zipped one folder up (``cas771/data/TaskA/...``): a member is matched on
    the first path suffix that names a file or folder the task uses.
    """
    required, optional = task_members(spec)
    parts = PurePosixPath(name).parts
    for start in range(len(parts)):
        rel = "/".join(parts[start:])
        if rel in required or rel in optional or any(rel.startswith(f.rstrip("/") + "/") for f in optional):
            return rel
    return None


def extract_task(archive: str | Path, spec: TaskSpec, out_dir: str | Path) -> list[str]:
    """Copy the task's members from a zip or folder into ``out_dir`` (replaced atomically)."""
    archive, out_dir = Path(archive), Path(out_dir)
    if not archive.exists():
        raise MoEError(f"{archive}: archive not found (the 'archive' parameter must name a zip or folder)")

    def build(staging: Path) -> list[str]:
        written = (_extract_zip if archive.is_file() else _copy_folder)(archive, spec, staging)
        required, _ = task_members(spec)
        missing = [r for r in required if not (staging / r).is_file()]
        if missing:
            raise MoEError(f"{archive}: missing expected file '{missing[0]}'"
                           + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
        return written

    return build_folder(out_dir, build)


def _open_zip(archive: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        raise MoEError(f"{archive}: not a readable zip archive ({e})") from None


def _safe_members(zf: zipfile.ZipFile, archive: Path):
    """The archive's files, junk dropped, each checked (no absolute path, no '..', no link) before use."""
    for info in zf.infolist():
        if _is_junk(info.filename):
            continue
        _check_member(archive, info)
        if not info.is_dir():
            yield info


def _copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, archive: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with zf.open(info) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise MoEError(f"{archive}: member '{info.filename}' is damaged ({e})") from None


def _extract_zip(archive: Path, spec: TaskSpec, staging: Path) -> list[str]:
    written = []
    with _open_zip(archive) as zf:
        for info in _safe_members(zf, archive):
            rel = _wanted(info.filename, spec)
            if rel is not None:
                _copy_member(zf, info, staging / rel, archive)
                written.append(rel)
    return written


def _copy_folder(folder: Path, spec: TaskSpec, staging: Path) -> list[str]:
    written = []
    for path in sorted(folder.rglob("*")):
        rel_name = path.relative_to(folder).as_posix()
        if path.is_dir() or _is_junk(rel_name):
            continue
        if path.is_symlink():
            raise MoEError(f"{path}: refuses a symbolic link inside the archive folder")
        rel = _wanted(rel_name, spec)
        if rel is None:
            continue
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, staging / rel)
        written.append(rel)
    return written


# --------------------------------------------------------------------------- Google Drive


def download_drive_file(file_id: str, target: Path, record: Path, attempts: int = 3, downloader=None) -> Path:
    """Fetch one Drive file to ``target`` (atomically), pin its sha256 in ``record`` on first fetch.

    A file already present and matching its recorded sha256 is not fetched again.
    """
    pins = json.loads(record.read_text()) if record.exists() else {}
    if target.exists() and pins.get(target.name) == file_digest(target):
        return target
    if downloader is None:
        import gdown

        def downloader(fid, out):
            result = gdown.download(id=fid, output=str(out), quiet=True)
            if result is None:
                raise OSError("Google Drive returned no file (quota exceeded or access refused)")
    target.parent.mkdir(parents=True, exist_ok=True)
    last = None
    for attempt in range(attempts):
        tmp = target.with_name(f".{target.name}.part")
        try:
            downloader(file_id, tmp)
            digest = file_digest(tmp)
            pinned = pins.get(target.name)
            if pinned and pinned != digest:
                raise MoEError(f"{target}: sha256 {digest[:12]}... differs from the one recorded in {record} "
                               f"({pinned[:12]}...); delete that line to accept a new archive")
            os.replace(tmp, target)
            if not pinned:
                pins[target.name] = digest
                record.write_text(json.dumps(pins, indent=2, sort_keys=True) + "\n")
            return target
        except MoEError:
            raise
        except Exception as e:  # network, quota, gdown's own errors
            last = e
            time.sleep(min(2 ** attempt, 10) if attempt + 1 < attempts else 0)
        finally:
            if tmp.exists():
                tmp.unlink()
    raise MoEError(f"could not download Drive file {file_id} ({str(last).splitlines()[0][:120] if last else 'unknown error'}); "
                   f"download https://drive.google.com/file/d/{file_id} by hand, then use source 'archive' "
                   f"with the 'archive' parameter set to the zip's path")


def fetch(spec: TaskSpec, source: str, out_dir: str | Path, *, archive: str | None = None,
          downloads: str | Path = "downloads", demo_train: int = 100, demo_test: int = 20, seed: int = 0,
          downloader=None, say=lambda s: None) -> dict:
    """Produce the task's archive-layout folder at ``out_dir``; return a summary (its ``source``: which
    made the files, e.g. demo, that results must name).

    ``source`` is the task spec's own when it names one, else the caller's (params.yaml's). Every
    file is read back before the fetch counts as done, so a wrong image size fails here, by name;
    the summary's ``shared_classes`` says, per shared class, (entries in the teachers' training
    files, distinct images used).
    """
    source = spec.source or source
    out_dir = Path(out_dir)
    summary = _fetch(spec, source, out_dir, archive=archive, downloads=downloads, demo_train=demo_train,
                     demo_test=demo_test, seed=seed, downloader=downloader, say=say)
    try:
        shared = shared_class_images(spec, out_dir, "train")  # reads back (and so checks) every training file,
        test = load_task_split(spec, out_dir, "test")  # and every test file
    except MoEError:
        shutil.rmtree(out_dir)  # files the task cannot use are not left as if fetched
        raise
    return {"source": source, **{k: v for k, v in summary.items() if k != "source"}, "shared_classes": shared,
            "test_images": len(test)}


def _fetch(spec: TaskSpec, source: str, out_dir: Path, *, archive, downloads, demo_train, demo_test, seed,
           downloader, say) -> dict:
    if source == "image_folder":
        if not spec.images:
            raise MoEError(f"task {spec.name}: source image_folder needs 'images' in the task spec")
        return build_folder(out_dir, lambda staging: build_from_image_folder(spec, spec.images, staging, say))
    if source == "demo":
        summary = build_folder(out_dir, lambda staging: generate_demo_archive(spec, staging, demo_train, demo_test, seed))
        return {"source": "demo", **summary}
    if source == "archive":
        if not archive:
            raise MoEError("archive: source 'archive' needs the 'archive' parameter: the zip or folder to read")
        files = extract_task(archive, spec, out_dir)
        return {"source": "archive", "archive": str(archive), "files": len(files)}
    if source == "cas771":
        downloads = Path(downloads)
        record = downloads / "SHA256SUMS.json"
        merged = Path(tempfile.mkdtemp(prefix=".cas771.", dir=downloads.parent if downloads.parent.exists() else "."))
        try:
            for name, file_id in DRIVE_FILES.items():
                zip_path = download_drive_file(file_id, downloads / f"{name}.zip", record, downloader=downloader)
                part = merged / name
                _extract_all_safely(zip_path, part)
            extract_task(merged, spec, out_dir)  # the two archives unpack side by side: gather from both
        finally:
            shutil.rmtree(merged, ignore_errors=True)
        return {"source": "cas771", "sha256": json.loads(record.read_text())}
    if source == "cifar100":
        tar = Path(archive) if archive and str(archive).endswith(".tar.gz") else None
        if tar is None:
            tar = download_cifar100(Path(downloads) / "cifar-100-python.tar.gz")
        elif not tar.is_file():
            raise MoEError(f"{tar}: CIFAR-100 archive not found")
        files = build_folder(out_dir, lambda staging: build_task_from_cifar100(spec, tar, staging))
        return {"source": "cifar100", "archive": str(tar), "files": files}
    raise MoEError(f"source: '{source}' is not one of {', '.join(SOURCES)}")


def _extract_all_safely(zip_path: Path, target: Path) -> None:
    with _open_zip(zip_path) as zf:
        for info in _safe_members(zf, zip_path):
            _copy_member(zf, info, target / info.filename, zip_path)
