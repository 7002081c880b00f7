"""bench: how fast this machine trains and runs the model (not a pipeline stage, not a test)."""

from pathlib import Path

import typer
from rich.table import Table

from moe.base.formats import save_json
from moe.core.runtime import pick_device, resolve_precision
from moe.results.bench import TRAIN_BATCH, run_bench

from .common import console, say, stage

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
    say(f"benchmarking ({resolved}); each figure is timed for at least {seconds:g} s ...")
    result = run_bench(resolved, batch_size=batch_size, min_seconds=seconds, say=say)
    save_json(result, out)
    console.print(bench_table(result))
    say(f"written {out}")


def bench_table(result: dict) -> Table:
    """The results as a table that fits an 80-column terminal: the batch and the peaks are the same
    for every row, so they go in the title; each row's GFLOP/s is set against its own precision's
    peak (a bf16 row against an emulated bf16 peak gets none: that path is never taken there)."""
    peaks, first = result["peaks"], result["rows"][0]
    table = Table(title=f"moe bench on {result['device']} ({result['cpu_capability']}, {result['threads']} threads), "
                        f"batch {first['batch_size']} (inference {first['infer_batch']}); peaks: "
                        f"fp32 {peaks['fp32_tflops'] * 1e3:.0f}, bf16 {peaks['bf16_tflops'] * 1e3:.1f} GFLOP/s")
    for col in ["size", "path", "train img/s", "infer img/s", "GFLOP/s", "of peak", "train x", "infer x"]:
        table.add_column(col, justify="right", no_wrap=col in ("path", "GFLOP/s"))
    table.caption = ("GFLOP/s: training, a step counted as 3 forward passes; of peak: of the row's precision's peak, "
                     "the faster of a large matmul and a large convolution; x: fast path over reference (fp32, NCHW, PyTorch's modules)")
    for r in result["rows"]:
        share = r["of_bf16_peak"] if r["precision"] == "bf16" else r["of_fp32_peak"]
        emulated = r["precision"] == "bf16" and not result["native_bf16"]
        table.add_row(str(r["image_size"]), f"fast {r['precision']}" if r["path"] == "fast" else "reference",
                      f"{r['train_img_s']:.0f}", f"{r['infer_img_s']:.0f}", f"{r['train_gflop_s']:.0f}",
                      "-" if emulated else f"{share:.0%}",
                      *((f"x{r['train_speedup']:.2f}", f"x{r['infer_speedup']:.2f}") if "train_speedup" in r else ("-", "-")))
    return table
