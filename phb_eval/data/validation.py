"""The data contract as checks: every problem in the cohort, found at once, each saying what to do.

``validate_cohort`` returns a list of ``Problem`` (errors first, then warnings); ``ensure_valid``
raises ``DataError`` carrying them when any is an error. Row numbers are those the user sees: the
spreadsheet row for ``.csv``/``.xlsx`` (header = row 1) and the case number from 1 for
``.sav``/``.dta``/``.parquet`` (see ``phb_eval.data.readers``).

A rule broken in many rows is listed for the first ``MAX_LISTED`` rows, then one line stands for the
rest with ``count`` set to how many rows it covers, so a million-row file gives a readable report
while ``sum(p.count for p in problems)`` still counts every broken row. All checks are vectorised.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..contract import (AGE_RANGE, BINARY_COLUMNS, BUDGET_COLUMNS, CONDITIONS, DEPLOYMENTS, EVENT_REQUIRED,
                        GHQ_LIKERT_MAX, GROUPS, ITEM_RANGES, ITEMS, MIN_YEAR, MONEY_COLUMNS, OPTIONAL_SERVICES,
                        REQUIRED, SERVICE_EVENT_TYPES, SERVICES, SINGLE_ITEMS)
from ..errors import DataError
from .events_spark import check_events_spark, spark_can_check
from .events_sql import check_events_file
from .problems import _MISSING_HINT, MAX_LISTED, Problem, _Report
from .readers import BOOKKEEPING, parse_dates

__all__ = ["Problem", "validate_cohort", "ensure_valid", "MAX_LISTED"]

MIN_SITE_SIZE = 10       # smaller sites are warned: unstable cluster-robust errors, disclosure risk


# ---- helpers ---------------------------------------------------------------------------------------
def _as_number(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return values.astype(float)
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    return pd.to_numeric(values.astype(object).where(values.notna()), errors="coerce").astype(float)


def _numeric_rules(columns, plan) -> dict:
    """column -> (kind, low, high, label) for every column the contract says holds numbers."""
    eq5d_levels = int(plan.instruments.eq5d_version[0]) if plan is not None else ITEM_RANGES["eq5d"][1]
    ranges = dict(ITEM_RANGES, eq5d=(ITEM_RANGES["eq5d"][0], eq5d_levels))
    labels = {"ascot": "ASCOT", "ghq12": "GHQ-12", "eq5d": f"EQ-5D-{eq5d_levels}L", "carer_ascot": "ASCOT-Carer"}
    stem_rule = {}
    for inst, stems in ITEMS.items():
        lo, hi = ranges[inst]
        for stem in stems:
            stem_rule[stem] = ("codes", lo, hi, labels[inst])
    stem_rule["eq_vas"] = ("range", *SINGLE_ITEMS["eq_vas"], "EQ VAS")
    stem_rule["carer_health"] = ("codes", *SINGLE_ITEMS["carer_health"], "carer self-rated health")
    scores = {"scrqol": ("range", None, 1, "SCRQoL index"), "eq5d_index": ("range", None, 1, "EQ-5D index"),
              "carer_scrqol": ("range", None, 1, "carer SCRQoL index"),
              "ghq12": ("range", 0, GHQ_LIKERT_MAX, "GHQ-12 Likert score")}
    cols = set(columns)
    out = {}
    for col in cols:
        m = re.match(r"^(.+)_(t\d+)$", col)
        if m:
            stem, wave = m.groups()
            if stem == "ghq12":
                # 'ghq12_<wave>' is item 12 when the other GHQ items of that wave are present,
                # otherwise the precomputed Likert score (the contract uses the name for both).
                others = {f"{s}_{wave}" for s in ITEMS["ghq12"][:-1]}
                out[col] = stem_rule[stem] if others & cols else scores["ghq12"]
            elif stem in stem_rule:
                out[col] = stem_rule[stem]
            elif stem in scores:
                out[col] = scores[stem]
        m = re.match(r"^(.+)_(pre|post)$", col)
        if m and m.group(1) in SERVICES + OPTIONAL_SERVICES:
            out[col] = ("count", 0, None, "service count")
    for col in cols & set(BINARY_COLUMNS):
        out[col] = ("codes", 0, 1, "0/1")
    for col in cols & set(MONEY_COLUMNS):
        out[col] = ("range", 0, None, "£ amount")
    if "age" in cols:
        out["age"] = ("range", *AGE_RANGE, "age")
    return out


def _check_numbers(rep: _Report, frame: pd.DataFrame, rules: dict) -> dict:
    """Report non-numbers and out-of-range values; returns column -> numeric Series for later checks."""
    numbers = {}
    for col in sorted(rules, key=list(frame.columns).index):
        kind, lo, hi, label = rules[col]
        raw = frame[col]
        num = _as_number(raw)
        numbers[col] = num
        rep.rows(frame, raw.notna() & num.isna(), col, "this is not a number",
                 f"write {label} values as numbers, {_MISSING_HINT}")
        ok = num.notna()
        raw = raw if pd.api.types.is_numeric_dtype(raw) else num  # show numbers as numbers
        if kind == "codes":
            bad = ok & ~num.isin(list(range(int(lo), int(hi) + 1)))
            fix = f"use the {label} codes {lo} to {hi}"
            if label.startswith("EQ-5D-3L"):
                fix += " (if the data are EQ-5D-5L, set instruments.eq5d_version: 5L in the plan)"
            if label == "0/1":
                rule, fix = "this must be 0 or 1", f"code it 1 for yes and 0 for no, {_MISSING_HINT}"
            else:
                rule, fix = f"this is not a valid {label} code (whole numbers {lo} to {hi})", f"{fix}, {_MISSING_HINT}"
            rep.rows(frame, bad, col, rule, fix, values=raw)
        elif kind == "count":
            rep.rows(frame, ok & (num < 0), col, "a service count cannot be negative",
                     f"give the number of contacts (0 or more), {_MISSING_HINT}", values=raw)
            rep.rows(frame, ok & (num >= 0) & (num % 1 != 0), col, "a service count must be a whole number",
                     "give whole counts of contacts or days", values=raw)
        elif label == "age":
            rep.rows(frame, ok & ((num < lo) | (num > hi)), col,
                     f"this is not a plausible age (the contract allows {lo} to {hi} years)",
                     f"give age in years at consent, {_MISSING_HINT}", values=raw)
        elif label == "£ amount":
            rep.rows(frame, ok & (num < 0), col, "an amount of money cannot be negative",
                     f"give £ per year (0 or more), {_MISSING_HINT}", values=raw)
        else:
            out_lo = (num < lo) if lo is not None else pd.Series(False, index=num.index)
            out_hi = (num > hi) if hi is not None else pd.Series(False, index=num.index)
            span = f"{lo} to {hi}" if lo is not None else f"at most {hi}"
            rep.rows(frame, ok & (out_lo | out_hi), col, f"this is outside the {label} range ({span})",
                     f"check the value, {_MISSING_HINT}", values=raw)
    return numbers


def _check_dates(rep: _Report, frame: pd.DataFrame, columns, today: pd.Timestamp) -> dict:
    parsed_all = {}
    for col in columns:
        if col not in frame:
            continue
        parsed, bad = parse_dates(frame[col])
        parsed_all[col] = parsed
        rep.rows(frame, bad, col, "this is not a date in the form yyyy-mm-dd or dd/mm/yyyy",
                 "write dates as 2010-05-31 or 31/05/2010 (day first; US month-first dates are not read)")
        rep.rows(frame, parsed > today, col, f"this date is in the future (today is {today:%Y-%m-%d})",
                 "correct the date")
        early = parsed.dt.year < MIN_YEAR
        rep.rows(frame, early, col, f"this date is before {MIN_YEAR}", "correct the year",
                 values=parsed[early].dt.strftime("%Y-%m-%d"))
    return parsed_all


def _labels(rep, frame, col, allowed, fix_what, mask=None):
    if col not in frame:
        return
    s = frame[col]
    present = s.notna() if mask is None else (s.notna() & mask)
    bad = present & ~s.astype(object).isin(list(allowed))
    rep.rows(frame, bad, col, f"this is not an allowed {fix_what}",
             f"use one of: {', '.join(allowed)}")


def _with_origin(frame: pd.DataFrame, default_file) -> pd.DataFrame:
    """Frames built in code (not by ``io``) get record numbers from 1 and the cohort's file name."""
    if not frame.index.is_unique:
        frame = frame.reset_index(drop=True)
    extra = {}
    if "_row" not in frame:
        extra["_row"] = np.arange(1, len(frame) + 1)
    if "_file" not in frame:
        extra["_file"] = default_file
    return frame.assign(**extra) if extra else frame


# ---- the participant table -------------------------------------------------------------------------
def _check_participants(rep, cohort, plan, today):
    frame = _with_origin(cohort.frame, cohort.files.get("data") or cohort.files.get("treatment"))
    required = [c for c in REQUIRED if not (cohort.two_files and c == "group")]
    per_file = cohort.columns or {f: list(frame.columns) for f in frame["_file"].unique()}
    participant_files = [f for role, f in cohort.files.items() if role != "events"] or list(per_file)
    for f in participant_files:
        have = [c for c in per_file.get(f, frame.columns) if c not in BOOKKEEPING]
        for col in required:
            if col not in have:
                shown = ", ".join(have[:30]) + (" …" if len(have) > 30 else "") if have else "none"
                rep.add("error", f, None, col, None,
                        f"the required column '{col}' is missing (columns found: {shown})",
                        f"add a '{col}' column, or, if it has another name in your file, map it in the plan: "
                        f"data.columns: {{{col}: YOUR_NAME}}")
    for col in required:
        if col in frame:
            from_files_with_it = frame["_file"].isin([f for f in per_file if col in per_file[f]])
            rep.rows(frame, frame[col].isna() & from_files_with_it, col,
                     f"'{col}' is empty but every participant needs one",
                     f"fill in '{col}' for every row, or delete rows that are not participants")

    has_group = "group" in frame
    group = frame["group"].astype(object) if has_group else pd.Series(np.nan, index=frame.index, dtype=object)
    is_phb, is_control = group.eq("phb"), group.eq("control")
    if has_group and not cohort.two_files:
        _labels(rep, frame, "group", GROUPS, "group (arm)")
    if cohort.two_files and "_group_given" in frame:
        given = frame["_group_given"]
        role_of = {v: k for k, v in cohort.files.items()}
        rep.rows(frame, given.notna() & given.astype(object).ne(group), "group",
                 "the file's own group value disagrees with the arm this file was given as",
                 "correct the group column, or give the file as the other arm (--treatment is 'phb', "
                 "--control is 'control'), or drop the column", values=given,
                 detail=lambda idx: [f"given as the {role_of.get(f, '?')} file, so group is "
                                     f"'{group.loc[i]}'" for i, f in zip(idx, frame.loc[idx, '_file'])])
    _labels(rep, frame, "condition", CONDITIONS, "condition group")
    _labels(rep, frame, "deployment", DEPLOYMENTS, "budget deployment")

    numbers = _check_numbers(rep, frame, _numeric_rules(frame.columns, plan))
    dates = _check_dates(rep, frame, ["consent_date", "death_date"], today)
    if {"consent_date", "death_date"} <= set(dates):
        consent, death = dates["consent_date"], dates["death_date"]
        rep.rows(frame, death < consent, "death_date", "the death date is before the consent date",
                 "check both dates (consent must come before death)",
                 detail=lambda idx: [f"consent_date {consent.loc[i]:%Y-%m-%d}" for i in idx])
    if cohort.events is not None:
        if "consent_date" not in frame:
            rep.add("error", participant_files[0] if participant_files else None, None, "consent_date", None,
                    "service events are given but the participant table has no 'consent_date' to place "
                    "them before or after consent",
                    "add each participant's consent date, or give _pre/_post counts instead of events")
        else:
            rep.rows(frame, frame["consent_date"].isna(), "consent_date",
                     "consent_date is empty, so this person's service events cannot be placed before or after consent",
                     "fill in the consent date")

    # Identifiers: duplicates within an arm, and the same person in both arms.
    if "participant_id" in frame:
        pid = frame["participant_id"]
        later = pid.notna() & pid.duplicated(keep="first")
        if later.any():
            dup = frame.loc[pid.notna() & pid.duplicated(keep=False), ["participant_id", "_file", "_row"]]
            dup = dup.assign(_g=group.loc[dup.index])
            arms = dup.groupby("participant_id", sort=False)["_g"].transform("nunique")  # blanks not counted
            dup["_g"] = dup["_g"].fillna("(none)").astype(str)
            first = dup.groupby("participant_id", sort=False)[["_file", "_row", "_g"]].transform("first")
            both = pd.Series(False, index=frame.index)
            both.loc[dup.index] = (arms > 1).to_numpy()
            same = later & ~both
            both &= later

            def where_first(idx):
                return [f"also at {first.at[i, '_file']} row {first.at[i, '_row']}, group '{first.at[i, '_g']}'"
                        for i in idx]
            rep.rows(frame, both, "participant_id", "this participant_id is in both arms",
                     "a person can be in one arm only: correct the id or remove the wrong row", detail=where_first)
            rep.rows(frame, same, "participant_id", "this participant_id appears more than once",
                     "give each participant one row and a unique participant_id", detail=where_first)

    # Budget fields belong to the PHB arm only.
    for col in BUDGET_COLUMNS:
        if col in frame and has_group:
            rep.rows(frame, is_control & frame[col].notna(), col, "a budget field is filled in for a control participant",
                     "leave budget fields empty for controls, or check this person's group")

    # Both arms present.
    if has_group:
        for arm, mask, role in (("phb", is_phb, "treatment"), ("control", is_control, "control")):
            if not mask.any():
                where = cohort.files.get(role) if cohort.two_files else cohort.files.get("data")
                rep.add("error", where, None, "group", None,
                        f"the {arm} arm has no participants" + ("" if cohort.two_files
                                                                 else f" (no row has group '{arm}')"),
                        "an evaluation compares both arms: give participants of both "
                        f"('{GROUPS[0]}' and '{GROUPS[1]}' in 'group', or --treatment and --control files)")

    # Warnings: small or one-arm sites.
    if "site" in frame and has_group and len(frame):
        known = frame["site"].notna()
        per_site = pd.DataFrame({"site": frame["site"][known].astype(str), "group": group[known]})
        sizes = per_site.groupby("site").size()
        small = sizes[sizes < MIN_SITE_SIZE]
        rep.items(small.items(), lambda it: dict(
            level="warning", file=None, row=None, column="site", value=it[0],
            rule=f"this site has only {it[1]} participant(s), fewer than {MIN_SITE_SIZE}",
            fix="check the site labels; small sites make cluster-robust standard errors less reliable and "
                "their counts may be suppressed in published tables"))
        arms = per_site[per_site["group"].isin(GROUPS)].groupby("site")["group"].agg(lambda g: sorted(set(g)))
        one_arm = arms[arms.map(len) == 1]
        rep.items(one_arm.items(), lambda it: dict(
            level="warning", file=None, row=None, column="site", value=it[0],
            rule=f"this site has participants in one arm only ('{it[1][0]}')",
            fix="check the site and group labels; a one-arm site adds no within-site comparison"))

    # Warning: died, no death date, yet post-consent service counts (exposure cannot be cut at death).
    post_cols = [c for c in frame.columns if c.endswith("_post") and c in numbers]
    if "died" in numbers and post_cols:
        no_date = dates["death_date"].isna() if "death_date" in dates else pd.Series(True, index=frame.index)
        mask = numbers["died"].eq(1) & no_date & frame[post_cols].notna().any(axis=1)
        n = int(mask.sum())
        if n:
            rows = frame.loc[mask, "_row"].head(MAX_LISTED).tolist()
            listed = ("row " if n == 1 else "rows ") + ", ".join(map(str, rows)) + \
                (f" and {n - len(rows)} more" if n > len(rows) else "")
            files = frame.loc[mask, "_file"].unique()
            rep.add("warning", files[0] if len(files) == 1 else None, None, "death_date", None,
                    f"{n} participant(s) who died (died = 1) have _post service counts but no death_date "
                    f"({listed}); their counts are analysed as if observed for the whole 12 months",
                    "add death_date so the exposure time stops at death, if it is known", count=n)


# ---- the event table -------------------------------------------------------------------------------
def _check_events(rep, cohort, today):
    ev = _with_origin(cohort.events, cohort.files.get("events"))
    path = cohort.files.get("events")
    have = [c for c in ev.columns if c not in BOOKKEEPING]
    for col in EVENT_REQUIRED:
        if col not in ev:
            rep.add("error", path, None, col, None,
                    f"the service-event table has no '{col}' column (columns found: {', '.join(have) or 'none'})",
                    f"add a '{col}' column, or map your name in the plan: data.columns: {{{col}: YOUR_NAME}}")
    if "participant_id" in ev:
        pid = ev["participant_id"]
        rep.rows(ev, pid.isna(), "participant_id", "an event has no participant_id",
                 "give the participant_id for every event")
        if "participant_id" in cohort.frame:
            known = set(cohort.frame["participant_id"].dropna())
            rep.rows(ev, pid.notna() & ~pid.isin(known), "participant_id",
                     "this participant_id is not in the participant table",
                     "correct the id, or add the person to the participant table")
    if "service" in ev:
        _labels(rep, ev, "service", SERVICE_EVENT_TYPES, "service label")
        rep.rows(ev, ev["service"].isna(), "service", "an event has no service label",
                 f"use one of: {', '.join(SERVICE_EVENT_TYPES)}")
    rules = {c: ("range", 0, None, lab) for c, lab in (("quantity", "quantity"), ("cost_gbp", "£ amount"))
             if c in ev}
    for col, (_k, _lo, _hi, label) in rules.items():
        raw = ev[col]
        num = _as_number(raw)
        rep.rows(ev, raw.notna() & num.isna(), col, "this is not a number",
                 f"write {col} as a number, {_MISSING_HINT}")
        rep.rows(ev, num < 0, col, f"{'a quantity' if col == 'quantity' else 'a cost'} cannot be negative",
                 "give bed days for an inpatient spell, 1 for other events" if col == "quantity"
                 else "give the cost in £ (0 or more), or leave it empty to use the unit cost", values=raw)
    _check_dates(rep, ev, ["event_date"], today)


# ---- public ----------------------------------------------------------------------------------------
def validate_cohort(cohort, plan=None, *, today=None, engine: str = "duckdb", spark_master=None) -> list[Problem]:
    """Check a loaded cohort against the data contract; return every problem found.

    Parameters
    ----------
    cohort : ``phb_eval.io.Cohort``.
    plan : the analysis plan (EQ-5D version for item ranges). None uses the contract defaults (3L).
    today : the date after which dates count as "in the future" (default: today's date).
    engine : ``"spark"`` validates an event file kept on disk, if it is Parquet, in a Spark session
        (``spark_master``, default local); otherwise, and for CSV, DuckDB streams it (``events_sql``).

    Returns
    -------
    list of ``Problem``: errors first, then warnings, each in the order the checks ran.

    Notes
    -----
    Errors: missing required columns; empty required values; unknown group, condition, deployment
    or service labels; text in number columns; unreadable dates; item codes out of range (ASCOT,
    GHQ-12, ASCOT-Carer 0-3; EQ-5D 1-3 or 1-5 per ``plan.instruments.eq5d_version``; EQ VAS 0-100;
    carer health 1-5; 0/1 flags); negative or fractional counts; negative money; ages outside
    16-110; dates before 1900, in the future, or death before consent; duplicate ids and ids in
    both arms; budget fields filled for controls; an empty arm; events for unknown people,
    negative quantities or costs. Warnings: sites with fewer than 10 people or one arm; people who
    died with no death_date but with _post counts; a file read as Windows-1252.
    """
    today = pd.Timestamp.today().normalize() if today is None else pd.Timestamp(today).normalize()
    rep = _Report()
    for note in getattr(cohort, "notes", []) or []:
        rep.add(note.get("level", "warning"), note.get("file"), None, note.get("column"), note.get("value"),
                note.get("rule", ""), note.get("fix"))
    _check_participants(rep, cohort, plan, today)
    if cohort.events is not None and not isinstance(cohort.events, pd.DataFrame):   # a path (large file)
        if engine == "spark" and spark_can_check(cohort.events, plan):
            check_events_spark(cohort.events, cohort.frame, plan, rep, today=today, master=spark_master)
        else:
            check_events_file(cohort.events, cohort.frame, plan, rep, today=today)
    elif cohort.events is not None:
        _check_events(rep, cohort, today)
    errors = [p for p in rep.problems if p.level == "error"]
    return errors + [p for p in rep.problems if p.level != "error"]


def ensure_valid(cohort, plan=None, *, today=None, engine: str = "duckdb", spark_master=None) -> list[Problem]:
    """Validate and raise ``DataError`` (with ``.problems``) if anything is an error; else return the warnings."""
    problems = validate_cohort(cohort, plan, today=today, engine=engine, spark_master=spark_master)
    errors = [p for p in problems if p.level == "error"]
    if errors:
        n = sum(p.count for p in errors)
        head = (f"the data break the data contract in {n} place(s); fix them and run 'phb-eval validate' "
                "again to check:")
        raise DataError(head + "\n" + "\n".join(f"  {p}" for p in errors), problems=problems)
    return problems
