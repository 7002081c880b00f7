"""bench: how fast this machine trains and runs the model (not a pipeline stage, not a test)."""

from pathlib import Path

import typer
from rich.table import Table

from moe.base.formats import save_json
from moe.core.runtime import pick_device, resolve_precision
from moe.results.bench import TRAIN_BATCH, run_bench

from .common import console, stage

app = typer.Typer(add_completion=False)


@app.command("bench")
@stage
def bench_command(precision: str = typer.Option("auto", help="auto, bf16 or fp32 for the fast path"),
                  seconds: float = typer.Option(3.0, help="minimum seconds to time each measurement"),
                  batch_size: int = typer.Option(TRAIN_BATCH, min=2, help="training batch (inference runs at predict's own batch)"),
                  out: Path = typer.Option(Path("bench.json"), help="where to write the results as JSON")):
    """Training and inference images/s at 32x32 and 64x64, against a plain fp32 eager reference (NCHW, PyTorch's own
    modules, no folding)."""
    resolved = resolve_precision(precision, pick_device())
    console.print(f"benchmarking ({resolved}); each figure is timed for at least {seconds:g} s ...")
    result = run_bench(resolved, batch_size=batch_size, min_seconds=seconds, say=lambda line: console.print(line, markup=False))
    save_json(result, out)
    peaks = result["matmul_peaks"]
    table = Table(title=f"moe bench on {result['device']} ({result['cpu_capability']}, {result['threads']} threads); "
                        f"matmul peaks: fp32 {peaks['fp32_tflops'] * 1e3:.0f} GFLOP/s, bf16 {peaks['bf16_tflops'] * 1e3:.1f} GFLOP/s")
    # against an emulated bf16 peak a fraction means nothing: that path is never taken there
    columns = ["size", "path", "batch", "train img/s", "infer img/s", "GFLOP/s", "of fp32 peak"]
    columns += ["of bf16 peak"] if result["native_bf16"] else []
    for col in columns + ["train x", "infer x"]:
        table.add_column(col, justify="right", no_wrap=col in ("path", "batch", "GFLOP/s"))
    table.caption = ("batch: training/inference; GFLOP/s: training, a step counted as 3 forward passes; "
                     "x: fast path over reference (fp32, NCHW, PyTorch's modules)")
    for r in result["rows"]:
        cells = [str(r["image_size"]), f"fast {r['precision']}" if r["path"] == "fast" else "reference", f"{r['batch_size']}/{r['infer_batch']}",
                 f"{r['train_img_s']:.0f}", f"{r['infer_img_s']:.0f}", f"{r['train_gflop_s']:.0f}", f"{r['of_fp32_peak']:.0%}"]
        cells += [f"{r['of_bf16_peak']:.0%}"] if result["native_bf16"] else []
        cells += [f"x{r['train_speedup']:.2f}", f"x{r['infer_speedup']:.2f}"] if "train_speedup" in r else ["-", "-"]
        table.add_row(*cells)
    console.print(table)
    console.print(f"written {out}")
