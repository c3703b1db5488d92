"""Event aggregation: windows, deaths, quantities and given costs by hand; file and frame inputs; DuckDB
and Spark give identical counts; the events route gives the same estimates as counts given as columns."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from phb_eval import events, service_use
from phb_eval.errors import DataError

GOLDEN = Path(__file__).parent / "golden"
C = pd.Timestamp("2011-03-01")


def _people():
    return pd.DataFrame({
        "participant_id": ["a", "b", "c", "d", "e"],
        "consent_date": [C] * 5,
        "died": [0, 1, 1, 0, 0],
        "death_date": [pd.NaT, pd.NaT, C + pd.Timedelta(days=100), pd.NaT, pd.NaT],
    })


def _events():
    d = lambda k: C + pd.Timedelta(days=k)  # noqa: E731
    rows = [
        # a: window edges
        ("a", d(-365), "gp", 1, np.nan), ("a", d(-366), "gp", 1, np.nan), ("a", d(-1), "gp", 1, np.nan),
        ("a", d(0), "gp", 1, np.nan), ("a", d(364), "gp", 1, 39.0), ("a", d(365), "gp", 1, np.nan),
        ("a", d(10), "inpatient", 4, np.nan), ("a", d(200), "inpatient", 2, 3000.0),
        ("a", d(-20), "inpatient", 7, np.nan),
        ("a", d(30), "ae", 1, np.nan),
        # b: died, no date -> post unobserved
        ("b", d(-10), "gp", 1, np.nan), ("b", d(10), "gp", 1, np.nan),
        # c: died on day 100 -> events before death counted
        ("c", d(50), "inpatient", 3, np.nan), ("c", d(60), "gp", 1, np.nan),
        # d: inpatient spell without bed days in the post window
        ("d", d(5), "inpatient", np.nan, np.nan),
        # not counted: unknown person, unknown service
        ("zz", d(1), "gp", 1, np.nan), ("a", d(2), "dentist", 1, np.nan),
    ]
    return pd.DataFrame(rows, columns=["participant_id", "event_date", "service", "quantity", "cost_gbp"])


def test_windows_deaths_and_rules_by_hand():
    out = events.aggregate_events(_events(), _people()).set_index("participant_id")
    a, b, c, d, e = (out.loc[k] for k in "abcde")
    assert (a.gp_consultations_pre, a.gp_consultations_post) == (2, 2)        # -365 and -1; 0 and 364
    assert (a.inpatient_days_pre, a.inpatient_days_post) == (7, 6)
    assert (a.inpatient_admissions_pre, a.inpatient_admissions_post) == (1, 2)
    assert (a.ae_attendances_pre, a.ae_attendances_post) == (0, 1)
    assert (a.indirect_cost_given_post, a.gp_consultations_given_post, a.inpatient_days_given_post,
            a.inpatient_admissions_given_post) == (3039.0, 1, 2, 1)
    assert b.gp_consultations_pre == 1 and np.isnan(b.gp_consultations_post) and np.isnan(b.inpatient_days_post)
    assert (c.inpatient_days_post, c.gp_consultations_post) == (3, 1)
    assert np.isnan(d.inpatient_days_post) and d.inpatient_admissions_post == 1   # bed days unknown, not 0
    assert (e == 0).all()                                                        # no events, observed -> 0
    assert "outpatient_attendances_pre" not in out.columns                       # type never occurs
    notes = " ".join(out.attrs.get("notes", []) or events.aggregate_events(_events(), _people()).attrs["notes"])
    assert "['dentist']" in notes and "1 of 17 events belong to no participant" in notes


def test_files_and_frames_agree(tmp_path):
    ev = _events()
    frame = events.aggregate_events(ev, _people())
    pq = tmp_path / "ev.parquet"
    ev.to_parquet(pq, index=False)
    csv = tmp_path / "ev.csv"
    uk = ev.assign(event_date=ev.event_date.dt.strftime("%d/%m/%Y"))            # UK dates in a CSV
    uk.to_csv(csv, index=False)
    pd.testing.assert_frame_equal(frame, events.aggregate_events(pq, _people()))
    pd.testing.assert_frame_equal(frame, events.aggregate_events(str(csv), _people()))


def test_bad_inputs(tmp_path):
    with pytest.raises(DataError, match="lacks column"):
        events.aggregate_events(_events().drop(columns="service"), _people())
    with pytest.raises(DataError, match="consent_date"):
        events.aggregate_events(_events(), _people().drop(columns="consent_date"))
    with pytest.raises(DataError, match="not found"):
        events.aggregate_events(tmp_path / "none.parquet", _people())


def _events_from_counts(df, rng):
    """Events that reproduce the golden data's counts (post events before any known death)."""
    rows = []
    consent = pd.Timestamp("2011-01-01") + pd.to_timedelta(np.arange(len(df)) % 300, unit="D")
    for i, r in enumerate(df.itertuples()):
        horizon = 365 if np.isnan(r.exposure_post_years) else max(1, int(r.exposure_post_years * 365))
        for svc, et in (("gp_consultations", "gp"), ("inpatient_admissions", "inpatient")):
            for k in rng.integers(-365, 0, int(getattr(r, f"{svc}_pre"))):
                rows.append((r.participant_id, consent[i] + pd.Timedelta(days=int(k)), et, 2))
            post = getattr(r, f"{svc}_post")
            if not np.isnan(post):
                for k in rng.integers(0, horizon, int(post)):
                    rows.append((r.participant_id, consent[i] + pd.Timedelta(days=int(k)), et, 2))
    ev = pd.DataFrame(rows, columns=["participant_id", "event_date", "service", "quantity"])
    people = df.assign(consent_date=consent,
                       death_date=[c + pd.Timedelta(days=int(round(x * 365))) if x < 1 else pd.NaT
                                   for c, x in zip(consent, df.exposure_post_years.fillna(1.0))])
    return ev, people


@pytest.fixture(scope="module")
def linked():
    df = pd.read_csv(GOLDEN / "service_use_models_data.csv", dtype={"participant_id": str, "site": str})
    return (df, *_events_from_counts(df, np.random.default_rng(7)))


def test_events_route_equals_counts_as_columns(linked):
    df, ev, people = linked
    counts = events.aggregate_events(ev, people)
    warn = []
    merged = events.merge_counts(people.drop(columns=["gp_consultations_pre", "gp_consultations_post"]), counts,
                                 warn=warn)
    for col in ("gp_consultations_pre", "gp_consultations_post", "inpatient_admissions_pre",
                "inpatient_admissions_post"):
        np.testing.assert_array_equal(merged[col].to_numpy(), df[col].to_numpy(dtype=float))
    np.testing.assert_array_equal(merged.inpatient_days_post.to_numpy(), 2 * df.inpatient_admissions_post.to_numpy())
    assert warn == []
    a = service_use.count_model(df, "gp_consultations", ["age", "sex", "condition"])
    b = service_use.count_model(merged, "gp_consultations", ["age", "sex", "condition"])
    pd.testing.assert_frame_equal(a, b)


def test_merge_counts_warns_on_disagreement(linked):
    df, ev, people = linked
    counts = events.aggregate_events(ev, people)
    shifted = people.assign(gp_consultations_post=people.gp_consultations_post + 1)
    warn = []
    events.merge_counts(shifted, counts, warn=warn)
    assert any("gp_consultations_post" in w and "differs" in w for w in warn)


@pytest.mark.spark
def test_spark_and_duckdb_identical(tmp_path, linked):
    pytest.importorskip("pyspark")
    _, ev, people = linked
    ev = pd.concat([ev, _events().assign(participant_id="P001")], ignore_index=True)
    pq = tmp_path / "ev.parquet"
    ev.to_parquet(pq, index=False)
    csv = tmp_path / "ev.csv"
    ev.to_csv(csv, index=False)
    duck = events.aggregate_events(pq, people)
    assert duck.gp_consultations_post.sum() > 0
    pd.testing.assert_frame_equal(duck, events.aggregate_events(pq, people, engine="spark"))
    pd.testing.assert_frame_equal(events.aggregate_events(csv, people),
                                  events.aggregate_events(csv, people, engine="spark"))
    pd.testing.assert_frame_equal(duck, events.aggregate_events(ev, people, engine="spark"))


def test_merge_counts_fills_gaps_without_calling_them_conflicts(linked):
    """People lost to questionnaire follow-up have empty counts but are still seen by record linkage."""
    df, ev, people = linked
    counts = events.aggregate_events(ev, people)
    gaps = people.assign(gp_consultations_post=people.gp_consultations_post.where(people.index % 4 != 0))
    warn = []
    merged = events.merge_counts(gaps, counts, warn=warn)
    n_gaps = int((gaps.gp_consultations_post.isna() & df.gp_consultations_post.notna()).sum())
    assert n_gaps > 0, warn
    assert any(f"empty in the participant table for {n_gaps} people" in w for w in warn), warn
    assert not any("gp_consultations_post" in w and "differs" in w for w in warn)
    np.testing.assert_array_equal(merged.gp_consultations_post.to_numpy(), df.gp_consultations_post.to_numpy(dtype=float))
