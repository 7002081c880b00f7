"""Prefix each console line with seconds since start; drop progress-bar redraws."""
import re, sys, time
t0 = time.perf_counter()
buf = ""
for chunk in iter(lambda: sys.stdin.read(1), ""):
    if chunk in "\r\n":
        line, buf = buf, ""
        if line.strip() and not re.search(r"\d+%\|| it/s\]|s/it\]", line):
            print(f"[{time.perf_counter() - t0:7.1f}s] {line}", flush=True)
    else:
        buf += chunk
if buf.strip():
    print(f"[{time.perf_counter() - t0:7.1f}s] {buf}", flush=True)
