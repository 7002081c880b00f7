import pytest
import yaml

from moe.base.errors import MoEError
from moe.base.params import load_params

from .conftest import ROOT


def write(tmp_path, **changes):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw.update(changes)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_repo_params_are_valid():
    p = load_params(ROOT / "params.yaml")
    assert p["diversity_weight"] == 0.1 and p["balance_weight"] == 0.5


@pytest.mark.parametrize("change, message", [
    ({"diversty_weight": 0.2}, "unknown parameter 'diversty_weight' \\(did you mean 'diversity_weight'\\?\\)"),
    ({"batch_size": 1}, "'batch_size' = 1 is out of range"),
    ({"initial_temperature": 0}, "'initial_temperature' = 0.0 is out of range"),
    ({"patience": 0}, "'patience' = 0 is out of range"),
    ({"lr": "fast"}, "'lr' must be float"),
    ({"balance_weight": -1}, "'balance_weight' = -1.0 is out of range"),
    ({"source": "ftp"}, "'source' = 'ftp' is out of range"),
    ({"tta_shift": 5}, "'tta_shift' = 5 is out of range"),
])
def test_bad_parameters_name_the_option(tmp_path, change, message):
    with pytest.raises(MoEError, match=message):
        load_params(write(tmp_path, **change))


def test_final_above_initial_temperature_warns(tmp_path):
    with pytest.warns(UserWarning, match="final_temperature"):
        load_params(write(tmp_path, final_temperature=3.0))
