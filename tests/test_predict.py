import pytest
import torch
from PIL import Image

from moe.base.errors import MoEError
from moe.base.images import read_image


def test_any_size_image_is_resized_to_task_resolution(tmp_path):
    Image.new("RGB", (200, 90), (255, 0, 0)).save(tmp_path / "red.png")
    Image.new("L", (10, 10), 128).save(tmp_path / "grey.jpg")
    red = read_image(tmp_path / "red.png", 32)
    assert red.shape == (3, 32, 32) and red.dtype == torch.uint8
    assert red[0].float().mean() == 255 and red[1:].sum() == 0
    assert read_image(tmp_path / "grey.jpg", 64).shape == (3, 64, 64)


def test_unreadable_image_names_the_file(tmp_path):
    (tmp_path / "fake.png").write_text("not an image")
    with pytest.raises(MoEError, match="fake.png: not a readable image"):
        read_image(tmp_path / "fake.png", 32)
    with pytest.raises(MoEError, match="missing.png: image not found"):
        read_image(tmp_path / "missing.png", 32)
