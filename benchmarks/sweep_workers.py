"""Wall time of one sweep on a LocalCluster of 1 and of 2 workers (fresh sweep folders, warm model cache:
a first, untimed pass fills ZSLAB_CACHE so that every timed pass does the same work).

    python benchmarks/sweep_workers.py [--sweep benchmarks/sweeps/text_n_per_class.yaml] [--workers 1 2]

Prints one JSON object (and writes it to benchmarks/results/sweep_workers_cpu.json with --save);
nothing asserts on the times.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweep", default="benchmarks/sweeps/text_n_per_class.yaml")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--save", action="store_true")
    args = ap.parse_args()

    from zslab.runner.sweep import load_sweep, run_sweep

    spec = load_sweep(args.sweep)
    result = {"sweep": args.sweep, "cpus": os.cpu_count(), "runs": []}
    run_sweep(spec, Path(tempfile.mkdtemp(prefix="zslab-sweep-warmup-")), workers=max(args.workers))
    for workers in args.workers:
        out = Path(tempfile.mkdtemp(prefix=f"zslab-sweep-{workers}w-"))
        t0 = time.perf_counter()
        r = run_sweep(spec, out, workers=workers)
        result["runs"].append({"workers": workers, "wall_s": round(time.perf_counter() - t0, 1),
                               "cells": len(r.cells), "counts": r.counts,
                               "cell_seconds": [c["seconds"] for c in r.cells]})
        print(json.dumps(result["runs"][-1]), flush=True)
    print(json.dumps(result, indent=1))
    if args.save:
        Path("benchmarks/results/sweep_workers_cpu.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
