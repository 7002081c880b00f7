"""Reading user images (PNG, JPEG, ...) into the model's uint8 layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .errors import MoEError


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def load_image(path: str | Path, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(3 x size x size uint8 RGB, the file's own (width, height)); other sizes are resized with
    bilinear filtering (the whole image, aspect ratio not kept), as the model sees square inputs."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise MoEError(f"{path}: image not found")
    try:
        with Image.open(path) as img:
            original = img.size
            img = img.convert("RGB")
            if img.size != (size, size):
                img = img.resize((size, size), Image.BILINEAR)
            return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous(), original
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise MoEError(f"{path}: not a readable image ({str(e).splitlines()[0][:100]})") from None


def read_image(path: str | Path, size: int) -> torch.Tensor:
    """3 x size x size uint8, RGB, resized with bilinear filtering."""
    return load_image(path, size)[0]
