"""bench: how fast this machine trains and runs the model (not a pipeline stage, not a test)."""

from pathlib import Path

import typer
from rich.table import Table

from moe.bench import run_bench
from moe.formats import save_json
from moe.runtime import pick_device, resolve_precision

from .common import console, stage

app = typer.Typer(add_completion=False)


@app.command("bench")
@stage
def bench_command(precision: str = typer.Option("auto", help="auto, bf16 or fp32 for the fast path"),
                  seconds: float = typer.Option(3.0, help="minimum seconds to time each measurement"),
                  out: Path = typer.Option(Path("bench.json"), help="where to write the results as JSON")):
    """Training and inference images/s at 32x32 and 64x64, against a plain fp32 eager reference."""
    resolved = resolve_precision(precision, pick_device())
    console.print(f"benchmarking ({resolved}); each figure is timed for at least {seconds:g} s ...")
    result = run_bench(resolved, min_seconds=seconds, say=lambda line: console.print(line, markup=False))
    save_json(result, out)
    peaks = result["matmul_peaks"]
    table = Table(title=f"moe bench on {result['device']} ({result['cpu_capability']}, {result['threads']} threads); "
                        f"matmul peaks: fp32 {peaks['fp32_tflops'] * 1e3:.0f} GFLOP/s, bf16 {peaks['bf16_tflops'] * 1e3:.1f} GFLOP/s")
    for col in ("size", "path", "batch", "train img/s", "infer img/s", "train GFLOP/s", "of fp32 peak", "of bf16 peak", "speed-up"):
        table.add_column(col, justify="right")
    for r in result["rows"]:
        speed = f"x{r['train_speedup']} / x{r['infer_speedup']}" if "train_speedup" in r else "-"
        # against an emulated bf16 peak the fraction means nothing: that path is never taken there
        bf16 = f"{r['of_bf16_peak']:.0%}" if result["native_bf16"] else "n/a"
        table.add_row(f"{r['image_size']}", f"{r['path']} ({r['precision']})", str(r["batch_size"]), f"{r['train_img_s']:.0f}",
                      f"{r['infer_img_s']:.0f}", f"{r['train_gflop_s']:.0f}", f"{r['of_fp32_peak']:.0%}", bf16, speed)
    console.print(table)
    console.print(f"written {out}")
