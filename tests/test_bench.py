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
        assert row["of_fp32_peak"] == pytest.approx(row["train_gflop_s"] / (result["peaks"]["fp32_tflops"] * 1e3),
                                                    abs=2e-3)  # both sides rounded
    for name in ("fp32", "bf16"):  # each precision's peak: the faster of its matmul and its convolution
        ops = result["peak_ops"]
        assert result["peaks"][f"{name}_tflops"] == pytest.approx(
            max(ops[f"matmul_{name}_tflops"], ops[f"conv_{name}_tflops"]), abs=1e-4)
    assert len(lines) == 3  # the peaks, then one line per path


def _row(size, path, precision, train, infer, gflop_s, of_fp32, of_bf16, speedups=None):
    row = {"image_size": size, "path": path, "precision": precision, "batch_size": 32, "infer_batch": 128,
           "train_img_s": train, "infer_img_s": infer, "train_gflop_s": gflop_s, "of_fp32_peak": of_fp32,
           "of_bf16_peak": of_bf16}
    if speedups:
        row["train_speedup"], row["infer_speedup"] = speedups
    return row


@pytest.mark.parametrize("native_bf16", [True, False])
def test_bench_table_fits_80_columns_and_sets_each_row_against_its_own_peak(native_bf16):
    from rich.console import Console

    from stages.bench import bench_table

    result = {"device": "cpu", "cpu_capability": "AVX512", "threads": 2, "native_bf16": native_bf16,
              "peaks": {"fp32_tflops": 0.231, "bf16_tflops": 0.9686 if native_bf16 else 0.0012},
              "rows": [_row(32, "fast", "bf16", 297.0, 1028.0, 677.0, 2.93, 0.699, (2.26, 3.21)),
                       _row(32, "reference", "fp32", 131.0, 320.0, 300.0, 1.3, 0.31),
                       _row(64, "fast", "bf16", 71.0, 199.0, 648.0, 2.8, 0.669, (2.38, 4.52)),
                       _row(64, "reference", "fp32", 30.0, 44.0, 273.0, 1.18, 0.28)]}
    console = Console(width=80, record=True, color_system=None)
    console.print(bench_table(result))
    text = console.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    lines = [line for line in text.splitlines() if line.startswith("│")]  # the body rows
    assert len(lines) == 4
    # a bf16 row against the bf16 peak where bf16 is native, and none where it is emulated; fp32 rows against fp32's
    assert ("70%" in lines[0]) == native_bf16 and (" - " in lines[0]) != native_bf16
    assert "130%" in lines[1] and "x2.26" in lines[0] and "x4.52" in lines[2]
    assert "batch 32 (inference 128)" in text
