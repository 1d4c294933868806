"""Time the main job (every notebook, offline, with the report) cold and warm.

Cold: a fresh, empty ZSLAB_CACHE, so every offline model is trained and every embedding computed.
Warm: the same cache again with ``--no-resume``, so every notebook re-executes but models and
embeddings come from the cache. Budgets (2 CPU cores): cold within 60 min, warm within 5 min.

    python benchmarks/main_job.py [--cache DIR] [--out runs/bench-main]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd, env) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=False)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default="", help="cache folder to use (default: a new temporary one)")
    ap.add_argument("--out", default="runs/bench-main")
    ap.add_argument("--skip-cold", action="store_true")
    ap.add_argument("--jobs", type=int, default=2, help="notebooks side by side, as `make run` (JOBS=2)")
    args = ap.parse_args()
    cache = args.cache or tempfile.mkdtemp(prefix="zslab-main-job-")
    env = {**os.environ, "ZSLAB_CACHE": cache, "ZSLAB_OFFLINE": "1"}
    zslab = [sys.executable, "-m", "zslab", "run", "--all", "--no-progress", "--jobs", str(args.jobs)]
    result = {"cache": cache, "cpus": os.cpu_count(), "jobs": args.jobs}
    if not args.skip_cold:
        result["cold_s"] = round(timed(zslab + ["--no-resume", "--out", f"{args.out}-cold"], env), 1)
    result["warm_s"] = round(timed(zslab + ["--no-resume", "--out", f"{args.out}-warm"], env), 1)
    status = {p.stem: json.loads(p.read_text()).get("status") for p in Path(f"{args.out}-warm", "status").glob("*.json")}
    result["warm_status"] = status
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
