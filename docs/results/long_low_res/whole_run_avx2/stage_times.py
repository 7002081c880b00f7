"""Seconds of teacher epochs (small/full), merge, MoE epochs (small/full) from a console log."""
import re, sys
for path in sys.argv[1:]:
    t = {"teacher_small": [], "teacher_full": [], "moe_small": [], "moe_full": []}
    merge = None
    for line in open(path):
        m = re.match(r"^(teacher \S+|MoE \S+) epoch (\d+)/\d+ .* val ([\d.]+)%( \(trained on (\d+)px images\))?\s+([\d.]+) s", line)
        if m:
            kind = "teacher" if m[1].startswith("teacher") else "moe"
            size = "small" if m[5] == "16" else "full"
            t[f"{kind}_{size}"].append(float(m[6]))
        elif line.startswith("merged "):
            merge = int(re.search(r" in (\d+) s", line)[1])
    print(path)
    for k, v in t.items():
        if v: print(f"  {k}: {len(v)} epochs, {sum(v)/60:.1f} min, {min(v):.1f}-{max(v):.1f} s")
    print(f"  merge {merge} s; epochs+merge {(sum(sum(v) for v in t.values()) + merge)/60:.1f} min")
