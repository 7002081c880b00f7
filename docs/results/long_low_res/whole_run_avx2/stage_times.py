"""Minutes of teacher and MoE epochs (on smaller and on full-size images) and the merge's seconds, from
whole-run consoles; the lines are parsed by scripts/plot_full_run.py, the same as its plot.

    python docs/results/long_low_res/whole_run_avx2/stage_times.py docs/results/long_low_res/whole_run_avx2/*/console.log
"""
import importlib.util
import re
import sys
from pathlib import Path

spec = importlib.util.spec_from_file_location("plot_full_run", Path(__file__).parents[4] / "scripts" / "plot_full_run.py")
plot_full_run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plot_full_run)

for path in sys.argv[1:]:
    epochs = [m for line in open(path) if (m := plot_full_run.EPOCH.match(line))]
    full_size = max(int(m["px"] or 0) for m in epochs)
    print(path)
    for kind in ("teacher", "MoE"):
        for small in (True, False):
            secs = [float(m["sec"]) for m in epochs if bool(m["teacher"]) == (kind == "teacher")
                    and bool(m["px"] and int(m["px"]) < full_size) == small]
            if secs:
                print(f"  {kind} epochs on {'smaller' if small else 'full-size'} images: {len(secs)}, "
                      f"{sum(secs) / 60:.1f} min, {min(secs):.1f}-{max(secs):.1f} s each")
    merge = [int(re.search(r" in (\d+) s", line)[1]) for line in open(path) if plot_full_run.MERGE.match(line)]
    print(f"  merge {merge[0]} s")
