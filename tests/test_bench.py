"""`moe bench` on a tiny budget: its table is the yardstick of the speed work, so its arithmetic is checked
here (the speeds themselves are measured by running it, never asserted in tests)."""

import pytest

from moe.results.bench import forward_gflop, run_bench


def test_forward_flops_are_the_architectures():
    # conv 3->64 at 32x32 alone is 2*27*64*1024 = 3.5 MFLOP; the whole forward pass is 0.76 GFLOP, 4x at 64x64
    assert forward_gflop(32) == pytest.approx(0.76, abs=0.01)
    assert forward_gflop(64) == pytest.approx(4 * forward_gflop(32), rel=0.02)


def test_bench_rows_pair_the_fast_path_with_the_reference():
    lines = []
    result = run_bench("fp32", sizes=(32,), batch_size=4, infer_batch=8, min_seconds=0.01, say=lines.append)
    fast, ref = result["rows"]
    assert (fast["path"], ref["path"]) == ("fast", "reference") and fast["image_size"] == 32
    assert (fast["batch_size"], fast["infer_batch"]) == (4, 8)
    for kind in ("train", "infer"):  # rates are rounded to 0.1 img/s in the rows, the ratio to 0.01
        a, b = fast[f"{kind}_img_s"], ref[f"{kind}_img_s"]
        slack = a / b * (0.05 / a + 0.05 / b) + 0.005
        assert fast[f"{kind}_speedup"] == pytest.approx(a / b, abs=slack)
    for row in (fast, ref):  # a training step counted as three forward passes
        assert row["train_gflop_s"] == pytest.approx(row["train_img_s"] * 3 * 0.76, rel=0.02)
        assert row["of_fp32_peak"] == pytest.approx(row["train_gflop_s"] / (result["matmul_peaks"]["fp32_tflops"] * 1e3),
                                                    abs=2e-3)  # both sides rounded
    assert len(lines) == 3  # the peaks, then one line per path
