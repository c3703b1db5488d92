"""National scale: ``phb-eval compare`` (default plan) on simulated cohorts of growing size, end to end.

For each size the cohort is simulated with ``phb_eval.simulate`` (22.4% PHB holders, as 56,000 of
250,000 on continuing healthcare; one site per 1,250 people, at least 20) and written as Parquet with its
record-linked service events; ``--extra-events`` adds that many events per person dated 1-3 years before
consent (outside both 12-month windows: read, validated and aggregated, never counted), so the event table
can reach national volume without changing the analysis. Files are cached under ``benchmarks/_data/``.

Each run is a fresh ``phb-eval compare`` process (start-up, reading, every stage, every output), timed
with its peak resident memory (``ru_maxrss`` of the process, from ``os.wait4``) and the time of each stage
(read from the one line per stage it logs on stderr). Then the log-log slope of wall time against people
(1 = cost grows in proportion to the cohort).

    python benchmarks/national_scale.py                       # 10,000 and 50,000 people
    python benchmarks/national_scale.py --sizes 2235,10000
    python benchmarks/national_scale.py --national            # also 250,000 people, 200 sites, 50 million events
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "_data"
PHB_SHARE = 56_000 / 250_000
STAGE = re.compile(r"^phb-eval: (.+?) (?:(\d+) min )?(\d+\.\d+) s \(total .*\)$")
NATIONAL = 250_000
NATIONAL_EVENTS = 50_000_000


def sites_for(n: int) -> int:
    return max(20, round(n / 1250))


def cohort_files(n: int, extra: int, seed: int) -> tuple[Path, Path, int]:
    """Cohort and event Parquet files for ``n`` people (simulated once, then reused); the number of events."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from phb_eval.simulate import simulate_pilot

    folder = DATA / f"national_n{n}_x{extra}_s{seed}"
    cohort, events, meta = folder / "cohort.parquet", folder / "events.parquet", folder / "meta.json"
    if meta.exists():
        return cohort, events, json.loads(meta.read_text())["events"]
    folder.mkdir(parents=True, exist_ok=True)
    n_phb = round(n * PHB_SHARE)
    sim = simulate_pilot(n_phb=n_phb, n_control=n - n_phb, sites=sites_for(n), seed=seed, events=True)
    sim.cohort.to_parquet(cohort, index=False)
    ev = sim.events.copy()
    ev["event_date"] = ev["event_date"].astype("datetime64[ms]")
    table = pa.Table.from_pandas(ev, preserve_index=False)
    total = len(ev)
    with pq.ParquetWriter(events, table.schema) as writer:
        writer.write_table(table)
        if extra:   # older record-linked history, before both windows, in chunks of 5 million events
            rng = np.random.default_rng(seed + 1)
            ids = sim.cohort["participant_id"].astype(str).to_numpy()
            consent = sim.cohort["consent_date"].astype("datetime64[ms]").to_numpy()
            services = np.array(["gp", "outpatient", "ae", "community_nurse"])
            todo = extra * n
            while todo:
                m = min(todo, 5_000_000)
                who = rng.integers(0, n, m)
                days = rng.integers(366, 3 * 365, m).astype("timedelta64[D]")
                chunk = {"participant_id": ids[who], "event_date": consent[who] - days,
                         "service": services[rng.integers(0, len(services), m)], "quantity": np.ones(m)}
                for col in ev.columns:
                    if col not in chunk:
                        chunk[col] = np.full(m, np.nan)
                writer.write_table(pa.Table.from_pandas(pd.DataFrame(chunk)[list(ev.columns)], schema=table.schema,
                                                        preserve_index=False))
                todo -= m
                total += m
    meta.write_text(json.dumps({"people": n, "sites": sites_for(n), "phb": n_phb, "events": total}))
    return cohort, events, total


def run_compare(cohort: Path, events: Path, extra_args=()) -> dict:
    """One ``phb-eval compare`` process: wall seconds, peak MB and seconds per stage."""
    with tempfile.TemporaryDirectory(prefix="phb-national-") as tmp:
        cmd = [sys.executable, "-m", "phb_eval.cli", "compare", str(cohort), "--events", str(events),
               "--out", str(Path(tmp) / "out"), *extra_args]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        err = proc.stderr.read()
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"compare failed ({proc.returncode}):\n{err[-3000:]}")
    stages = {}
    for line in err.splitlines():
        m = STAGE.match(line.strip())
        if m:
            stages[m.group(1)] = 60 * int(m.group(2) or 0) + float(m.group(3))
    return {"wall": wall, "peak_mb": usage.ru_maxrss / 1024, "stages": stages}


def loglog_slope(sizes, seconds) -> float:
    """Slope of log(time) on log(people): 1 means time grows in proportion to the cohort."""
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,50000", help="people per cohort, comma separated")
    ap.add_argument("--national", action="store_true",
                    help=f"also {NATIONAL:,} people, {sites_for(NATIONAL)} sites, {NATIONAL_EVENTS:,} events")
    ap.add_argument("--extra-events", type=int, default=0, help="extra (out-of-window) events per person")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    plan = [(n, args.extra_events) for n in sizes]
    if args.national:
        plan.append((NATIONAL, None))
    print(f"cores: {len(os.sched_getaffinity(0))} usable of {os.cpu_count()}; default plan (m = 20, B = 5,000, "
          "every stratum); one fresh process per run")
    rows = []
    for n, extra in plan:
        t0 = time.perf_counter()
        if extra is None:   # the national cohort: pad the events to the national volume
            base = cohort_files(n, 0, args.seed)[2]
            extra = max(0, round((NATIONAL_EVENTS - base) / n))
        cohort, events, n_events = cohort_files(n, extra, args.seed)
        made = time.perf_counter() - t0
        res = run_compare(cohort, events)
        rows.append({"people": n, "sites": sites_for(n), "events": n_events, **res})
        print(f"\n{n:,} people, {sites_for(n)} sites, {n_events:,} events (data ready in {made:.0f} s):")
        print(f"  end to end {res['wall']:.1f} s, peak memory {res['peak_mb']:,.0f} MB")
        for name, sec in sorted(res["stages"].items(), key=lambda kv: -kv[1]):
            if sec >= 0.05:
                print(f"    {name:<32}{sec:8.2f} s")
    if len(rows) > 1:
        slope = loglog_slope([r["people"] for r in rows], [r["wall"] for r in rows])
        mem = loglog_slope([r["people"] for r in rows], [r["peak_mb"] for r in rows])
        print(f"\nlog-log slope of wall time on people: {slope:.2f}; of peak memory: {mem:.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
