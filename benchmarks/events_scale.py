"""Event aggregation at national scale: DuckDB (phb_eval.events) against a pandas group-by.

Generates ``--participants`` people and about ``--events`` service events as Parquet under
``benchmarks/_data/`` (git-ignored; reused when present), then times each engine in a fresh
subprocess and reports wall time and peak resident memory (ru_maxrss of the child), and their ratio.

    python benchmarks/events_scale.py                                   # 200,000 people, 50 million events
    python benchmarks/events_scale.py --participants 20000 --events 5000000
    python benchmarks/events_scale.py --engines duckdb,pandas,spark
    python benchmarks/events_scale.py --participants 100000 --events 5000000 --engines duckdb,spark

DuckDB and Spark each validate the event file (every rule of the data contract; phb_eval.data.events_sql
and phb_eval.data.events_spark) and then aggregate it; both times are reported (Spark's session start-up is
excluded from both).

The pandas route reads the same Parquet columns into memory and does the same windows and counts;
its counts are checked against DuckDB's for equality before figures are reported.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "_data"
SERVICES = np.array(["inpatient", "ae", "gp", "outpatient", "community_nurse", "practice_nurse"])
SERVICE_P = np.array([0.04, 0.06, 0.55, 0.15, 0.10, 0.10])


def paths(n_people: int, n_events: int):
    stem = f"p{n_people}_e{n_events}"
    return DATA / f"people_{stem}.parquet", DATA / f"events_{stem}.parquet"


def generate(n_people: int, n_events: int, seed: int = 1) -> None:
    """Write people and events Parquet files in chunks (bounded memory)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    people_path, events_path = paths(n_people, n_events)
    if people_path.exists() and events_path.exists():
        return
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = np.array([f"P{i:07d}" for i in range(n_people)])
    consent = np.datetime64("2010-04-01") + rng.integers(0, 450, n_people).astype("timedelta64[D]")
    died = rng.random(n_people) < 0.08
    has_date = died & (rng.random(n_people) < 0.6)
    death = np.where(has_date, consent + rng.integers(1, 365, n_people).astype("timedelta64[D]"),
                     np.datetime64("NaT"))
    pq.write_table(pa.table({"participant_id": ids, "consent_date": consent.astype("datetime64[D]"),
                             "died": died.astype(np.int8), "death_date": death.astype("datetime64[D]")}), people_path)
    # heavy users: events per person ~ gamma-Poisson mixture
    weight = rng.gamma(0.8, 1.0, n_people)
    weight /= weight.sum()
    dict_ids = pa.array(ids)
    dict_services = pa.array(SERVICES)
    chunk = 5_000_000
    writer = None
    done = 0
    while done < n_events:
        m = min(chunk, n_events - done)
        who = rng.choice(n_people, size=m, p=weight).astype(np.int32)
        svc = rng.choice(len(SERVICES), size=m, p=SERVICE_P).astype(np.int8)
        day = rng.integers(-400, 400, m)
        date = (consent[who] + day.astype("timedelta64[D]")).astype("datetime64[D]")
        qty = np.where(SERVICES[svc] == "inpatient", rng.integers(1, 15, m), 1).astype(np.float64)
        cost = np.where(rng.random(m) < 0.02, np.round(rng.gamma(2.0, 100.0, m), 2), np.nan)
        table = pa.table({
            "participant_id": pa.DictionaryArray.from_arrays(pa.array(who), dict_ids),
            "event_date": pa.array(date),
            "service": pa.DictionaryArray.from_arrays(pa.array(svc), dict_services),
            "quantity": pa.array(qty),
            "cost_gbp": pa.array(cost, from_pandas=True),
        })
        if writer is None:
            writer = pq.ParquetWriter(events_path, table.schema)
        writer.write_table(table)
        done += m
    writer.close()


def run_engine(people_path: Path, events_path: Path, engine: str = "duckdb"):
    """Validation (every event rule) then aggregation, by DuckDB or Spark: (validate s, aggregate s, counts)."""
    import pandas as pd

    from phb_eval import events
    from phb_eval.data.events_spark import check_events_spark
    from phb_eval.data.events_sql import check_events_file

    people = pd.read_parquet(people_path)
    if engine == "spark":   # the session (JVM start-up) is not part of either timing
        events.spark_session().sql("SELECT 1").collect()
    start = time.perf_counter()
    if engine == "spark":
        problems = check_events_spark(events_path, people, today="2024-01-01")
    else:
        problems = check_events_file(events_path, people, today="2024-01-01")
    validated = time.perf_counter()
    counts = events.aggregate_events(events_path, people, engine=engine)
    return validated - start, time.perf_counter() - validated, counts, len(problems)


def run_pandas(people_path: Path, events_path: Path):
    """The same windows and counts with an in-memory pandas group-by (count columns only)."""
    import pandas as pd

    people = pd.read_parquet(people_path)
    start = time.perf_counter()
    ev = pd.read_parquet(events_path, columns=["participant_id", "event_date", "service", "quantity"])
    consent = pd.to_datetime(people.set_index("participant_id")["consent_date"])
    k = (pd.to_datetime(ev["event_date"]).to_numpy()
         - consent.reindex(ev["participant_id"].astype(str)).to_numpy()).astype("timedelta64[D]").astype(np.int64)
    window = np.where((k >= -365) & (k < 0), 0, np.where((k >= 0) & (k < 365), 1, -1))
    ev = ev.assign(window=window)[window >= 0]
    g = ev.groupby(["participant_id", "service", "window"], observed=True)["quantity"].agg(["size", "sum"])
    wide = g.unstack(["service", "window"]).fillna(0.0)
    out = pd.DataFrame(index=people["participant_id"].astype(str))
    rules = {"inpatient_days": ("inpatient", "sum"), "inpatient_admissions": ("inpatient", "size"),
             "ae_attendances": ("ae", "size"), "gp_consultations": ("gp", "size")}
    for name, (svc, how) in rules.items():
        for w, suffix in ((0, "pre"), (1, "post")):
            col = (how, svc, w)
            out[f"{name}_{suffix}"] = wide[col].reindex(out.index).fillna(0.0).to_numpy() if col in wide else 0.0
    post_missing = (people["died"].to_numpy() == 1) & people["death_date"].isna().to_numpy()
    for c in [c for c in out.columns if c.endswith("_post")]:
        out.loc[post_missing, c] = np.nan
    return time.perf_counter() - start, out.reset_index(names="participant_id")


def children_peak_mb() -> float:
    """Peak resident memory (VmHWM) of this process's live children, e.g. the Spark JVM, in MB."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/status"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() == str(os.getpid()) and "VmHWM" in fields:
            total += float(fields["VmHWM"].split()[0]) / 1024
    return total


def child(engine: str, n_people: int, n_events: int) -> None:
    people_path, events_path = paths(n_people, n_events)
    validate, problems = None, None
    if engine == "pandas":
        seconds, counts = run_pandas(people_path, events_path)
    else:
        validate, seconds, counts, problems = run_engine(people_path, events_path, engine)
    check = DATA / f"check_{engine}_p{n_people}_e{n_events}.parquet"
    cols = ["participant_id", "inpatient_days_pre", "inpatient_days_post", "inpatient_admissions_post",
            "ae_attendances_post", "gp_consultations_pre", "gp_consultations_post"]
    counts[cols].to_parquet(check, index=False)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux: KiB
    peak_mb += children_peak_mb()                                           # the Spark JVM
    print(json.dumps({"engine": engine, "seconds": seconds, "validate_seconds": validate, "problems": problems,
                      "peak_mb": peak_mb}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--participants", type=int, default=200_000)
    ap.add_argument("--events", type=int, default=50_000_000)
    ap.add_argument("--engines", default="duckdb,pandas")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.participants, args.events)
        return 0
    t0 = time.perf_counter()
    generate(args.participants, args.events, args.seed)
    print(f"data: {args.participants:,} participants, {args.events:,} events "
          f"({paths(args.participants, args.events)[1].stat().st_size / 1e6:.0f} MB Parquet; "
          f"ready in {time.perf_counter() - t0:.1f}s)")
    results = {}
    for engine in args.engines.split(","):
        proc = subprocess.run([sys.executable, __file__, "--child", engine, "--participants", str(args.participants),
                               "--events", str(args.events)], capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{engine}: failed\n{proc.stderr[-2000:]}")
            continue
        results[engine] = json.loads(proc.stdout.strip().splitlines()[-1])
        jvm = " (Python and the Spark JVM)" if engine == "spark" else ""
        r = results[engine]
        checked = (f"validation {r['validate_seconds']:7.1f} s ({r['problems']} problem lines), "
                   if r.get("validate_seconds") is not None else "")
        print(f"{engine:>7}: {checked}aggregation {r['seconds']:7.1f} s wall, peak memory {r['peak_mb']:8.0f} MB{jvm}")
    if len(results) > 1:
        import pandas as pd

        checks = {e: pd.read_parquet(DATA / f"check_{e}_p{args.participants}_e{args.events}.parquet")
                  .sort_values("participant_id").reset_index(drop=True) for e in results}
        ref = next(iter(checks))
        for e, frame in checks.items():
            pd.testing.assert_frame_equal(checks[ref], frame, check_dtype=False)
        print(f"counts identical across {', '.join(results)}")
    if "duckdb" in results and "spark" in results:
        d, k = results["duckdb"], results["spark"]
        print(f"spark / duckdb: validation x{k['validate_seconds'] / d['validate_seconds']:.2f}, "
              f"aggregation x{k['seconds'] / d['seconds']:.2f}")
    if "duckdb" in results and "pandas" in results:
        d, p = results["duckdb"], results["pandas"]
        print(f"pandas / duckdb: time x{p['seconds'] / d['seconds']:.2f}, "
              f"peak memory x{p['peak_mb'] / d['peak_mb']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
