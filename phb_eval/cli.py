"""The phb-eval command line: parses arguments, loads the plan, calls the library. No statistics here."""
from __future__ import annotations

import contextlib
import errno
import json
import signal
import sys
import traceback
from pathlib import Path

import click

from .errors import PhbEvalError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


# ---- shared options: the same flag means the same thing on every command -------------------------
def plan_option(f):
    return click.option("--plan", "plan_path", type=click.Path(dir_okay=False), default=None,
                        help="Analysis plan (YAML). Default: the built-in analyses/default.yaml.")(f)


def seed_option(f):
    return click.option("--seed", type=int, default=None, help="Random seed (overrides the plan's seed).")(f)


def force_option(f):
    return click.option("--force", is_flag=True, help="Replace an existing output.")(f)


def quiet_option(f):
    return click.option("--quiet", "-q", is_flag=True, help="No progress bars or summaries on stderr.")(f)


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON to stdout.")(f)


def engine_options(f):
    f = click.option("--spark-master", default=None, help="Spark master URL (default: a local session on 2 cores).")(f)
    f = click.option("--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb", show_default=True,
                     help="Engine that validates and aggregates the event table.")(f)
    return f


def cohort_options(f):
    f = click.option("--events", "events_path", type=click.Path(dir_okay=False), default=None,
                     help="Service-event table (record-linked data).")(f)
    f = click.option("--control", "control_path", type=click.Path(dir_okay=False), default=None,
                     help="Control-arm table (with --treatment).")(f)
    f = click.option("--treatment", "treatment_path", type=click.Path(dir_okay=False), default=None,
                     help="PHB-arm table (with --control), instead of one DATA file.")(f)
    return click.argument("data", required=False, type=click.Path(dir_okay=False))(f)


def _load_plan(plan_path, seed=None):
    from .plan import load_plan
    overrides = {"seed": seed} if seed is not None else None
    return load_plan(plan_path, overrides)


def _load_cohort(data, treatment_path, control_path, events_path, plan, engine="duckdb"):
    if data is None and not (treatment_path and control_path):
        raise PhbEvalError("no data given. Fix: give one DATA file with a 'group' column, "
                           "or both --treatment FILE and --control FILE")
    if data is not None and (treatment_path or control_path):
        raise PhbEvalError("give either one DATA file or --treatment and --control, not both")
    if bool(treatment_path) != bool(control_path):
        raise PhbEvalError("--treatment and --control go together: give both files")
    from .io import load_cohort
    from .progress import stage
    # with Spark a CSV/Parquet event file stays on disk whatever its size: Spark reads it, not pandas
    on_disk = {"events_in_memory_max_bytes": 0} if engine == "spark" else {}
    with stage("read"):
        return load_cohort(data=data, treatment=treatment_path, control=control_path, events=events_path, plan=plan,
                           **on_disk)


def _echo_err(msg, quiet=False):
    if not quiet:
        click.echo(msg, err=True)


# ---- the group ------------------------------------------------------------------------------------
def _print_version(ctx, _param, value):
    if value and not ctx.resilient_parsing:
        from . import __version__
        click.echo(f"phb-eval, version {__version__}")
        ctx.exit()


@click.group(context_settings=CONTEXT)
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the version and exit.")
def cli():
    """Evaluate NHS personal health budget (PHB) pilots.

    \b
    Typical session:
      phb-eval simulate --out pilot/            # a synthetic pilot-like cohort
      phb-eval validate pilot/cohort.csv        # check it against the data contract
      phb-eval init my_plan.yaml                # a commented analysis plan to edit
      phb-eval score pilot/cohort.csv --out scored.csv
      phb-eval compare pilot/cohort.csv --out results/
      phb-eval subgroups pilot/cohort.csv --out subgroups/
      phb-eval budget-impact --from-results results/ --out rollout/
      phb-eval demo                             # all of it on a simulated cohort
    """


@cli.command(context_settings=CONTEXT)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Folder to write into.")
@click.option("--n-phb", type=click.IntRange(min=2), default=1171, show_default=True, help="PHB holders.")
@click.option("--n-control", type=click.IntRange(min=2), default=1064, show_default=True, help="Controls.")
@click.option("--sites", type=click.IntRange(min=1), default=20, show_default=True, help="Pilot sites.")
@click.option("--seed", type=int, default=2012, show_default=True, help="Random seed.")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "xlsx"]), default="csv", show_default=True)
@click.option("--events", is_flag=True, help="Also write a record-linked service-event table (events.csv).")
@click.option("--eq5d", "eq5d_version", type=click.Choice(["3L", "5L"]), default="3L", show_default=True)
@force_option
def simulate(out_dir, n_phb, n_control, sites, seed, fmt, events, eq5d_version, force):
    """Write a synthetic pilot-like cohort with known, planted effects.

    \b
    Writes DIR/cohort.<ext> (every data-contract column, both arms), DIR/truth.json
    (the planted effects) and, with --events, DIR/events.csv. Same seed, same bytes.

    \b
    Examples:
      phb-eval simulate --out pilot/
      phb-eval simulate --out big/ --n-phb 20000 --n-control 20000 --format parquet --events
    """
    from .simulate import simulate_pilot, write_simulation
    sim = simulate_pilot(n_phb=n_phb, n_control=n_control, sites=sites, seed=seed, events=events,
                         eq5d_version=eq5d_version)
    paths = write_simulation(sim, out_dir, fmt=fmt, force=force)
    for role, path in paths.items():
        click.echo(f"{role}: {path}")


@cli.command(context_settings=CONTEXT)
@cohort_options
@plan_option
@json_option
@quiet_option
@engine_options
def validate(data, treatment_path, control_path, events_path, plan_path, as_json, quiet, engine, spark_master):
    """Check cohort files against the data contract and report every problem at once.

    \b
    Exit status: 0 valid (warnings allowed), 2 problems found.
    Examples:
      phb-eval validate cohort.csv
      phb-eval validate --treatment phb.sav --control control.dta --events events.parquet
      phb-eval validate cohort.xlsx --plan my_plan.yaml --json
      phb-eval validate cohort.parquet --events events.parquet --engine spark
    """
    from .progress import configure, stage
    from .validate import validate_cohort
    configure(quiet=quiet)
    plan = _load_plan(plan_path)
    cohort = _load_cohort(data, treatment_path, control_path, events_path, plan, engine)
    with stage("validate"):
        problems = validate_cohort(cohort, plan, engine=engine, spark_master=spark_master)
    errors = [p for p in problems if p.level == "error"]
    warnings = [p for p in problems if p.level == "warning"]
    if as_json:
        click.echo(json.dumps({"valid": not errors, "errors": len(errors), "warnings": len(warnings),
                               "problems": [p.to_dict() for p in problems]}, indent=2, default=str))
    else:
        for p in problems:
            click.echo(f"{p.level}: {p}")
        n = len(cohort.frame)
        verdict = "valid" if not errors else "NOT valid"
        n_err, n_warn = sum(p.count for p in errors), sum(p.count for p in warnings)
        click.echo(f"{verdict}: {n} participants, {n_err} error(s), {n_warn} warning(s)")
    sys.exit(2 if errors else 0)


@cli.command(context_settings=CONTEXT)
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--pilot", is_flag=True, help="Start from the plan that mirrors the 2009-2012 pilot.")
@force_option
def init(path, pilot, force):
    """Write a commented analysis plan to edit.

    \b
    Examples:
      phb-eval init my_plan.yaml
      phb-eval init pilot_rerun.yaml --pilot
    """
    from .plan import ANALYSES_DIR, load_plan
    target = Path(path)
    if target.exists() and not force:
        raise PhbEvalError(f"{target} already exists. Fix: choose another path or add --force to replace it")
    source = ANALYSES_DIR / ("pilot_2012.yaml" if pilot else "default.yaml")
    load_plan(source)  # the shipped plan must validate before we hand it out
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    tmp.replace(target)
    click.echo(f"wrote {target}: edit it, then pass it with --plan {target}")


def report_options(f):
    f = click.option("--no-disclosure", is_flag=True,
                     help="Publish small numbers unsuppressed (stated in the report; never for publication).")(f)
    f = click.option("--format", "formats", default="html", show_default=True,
                     help="Report formats, comma separated: html, md (HTML is always written).")(f)
    f = click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
                     help="Output folder (refused if it exists, unless --force).")(f)
    return f


def analysis_options(f):
    """Every option compare and subgroups share: inputs, plan, output folder, engine, seed, --force, --quiet."""
    for option in (quiet_option, force_option, seed_option, engine_options, report_options, plan_option,
                   cohort_options):
        f = option(f)
    return f


def _formats(text: str) -> tuple:
    chosen = tuple(dict.fromkeys(["html", *[t.strip().lower() for t in text.split(",") if t.strip()]]))
    unknown = [t for t in chosen if t not in ("html", "md")]
    if unknown:
        raise PhbEvalError(f"--format {text!r}: unknown format(s) {unknown}. Fix: use html, md or html,md")
    return chosen


def _plan_dir(plan_path):
    return Path(plan_path).parent if plan_path else None


def _plan_inputs(plan, plan_path) -> list:
    """The plan file and every file it names (weights resolve against the plan's folder, costs the current one)."""
    from .instruments import _resolve
    named = [_resolve(p, _plan_dir(plan_path)) for p in
             (plan.instruments.ascot_weights, plan.instruments.carer_ascot_weights) if p]
    named += [Path(p) for p in (plan.costs.unit_costs, plan.costs.inflation_index) if p]
    return ([plan_path] if plan_path else []) + [str(p) for p in named]


@contextlib.contextmanager
def _check_out(out_dir, force, inputs=()):
    """Before any work: the output rules (no input overwritten, --force only over our folder, room to write),
    and this run's lock on the folder until the block ends (the writer checks again when it writes)."""
    from .report import outdir
    out = Path(out_dir).expanduser().absolute()
    with outdir.output_lock(out):
        outdir.prepare_target(out, force, [str(p) for p in inputs if p])
        yield


def _write(results, out_dir, plan, formats, force, no_disclosure, quiet, inputs=()):
    from .report.writer import write_outputs
    path = write_outputs(results, out_dir, plan=plan, formats=formats, force=force, disclosure=not no_disclosure,
                         inputs=inputs)
    n_skipped = len(results.skipped)
    click.echo(f"report: {path / 'report.html'}")
    _echo_err(f"{len(results.estimates)} result rows, {len(results.warnings)} warning(s), "
              f"{n_skipped} analysis/analyses not run (listed in the report)", quiet)
    return path


def _analyse(run, files, plan_path, seed, out_dir, formats, force, no_disclosure, quiet, **options):
    """Shared body of compare and subgroups: plan, output check, cohort, the analysis, the output folder."""
    from .progress import configure
    configure(quiet=quiet)
    fmts = _formats(formats)
    plan = _load_plan(plan_path, seed)
    inputs = [*files, *_plan_inputs(plan, plan_path)]
    with _check_out(out_dir, force, inputs):
        cohort = _load_cohort(*files, plan, options.get("engine", "duckdb"))
        results = run(cohort, plan, command=sys.argv, base_dir=_plan_dir(plan_path), quiet=quiet, **options)
        _write(results, out_dir, plan, fmts, force, no_disclosure, quiet, inputs)


def _check_score_target(target: Path, force: bool, inputs) -> None:
    """score writes one file: never an input, never an existing file without --force, somewhere writable."""
    from .report.outdir import check_room
    real = Path(target).expanduser().resolve()
    for given in inputs:
        if given and Path(given).expanduser().resolve() == real:
            raise PhbEvalError(f"--out {target} is the input file {given}; inputs are never overwritten. "
                               "Fix: choose another name")
    if target.is_dir():
        raise PhbEvalError(f"--out {target} is a folder; score writes one file. Fix: give a file name such as "
                           f"{target / 'scored.csv'}")
    if target.exists() and not force:
        raise PhbEvalError(f"{target} already exists. Fix: choose another --out, or add --force to replace it")
    check_room(target)


@cli.command(context_settings=CONTEXT)
@cohort_options
@plan_option
@click.option("--out", "out_file", type=click.Path(dir_okay=False), required=True,
              help="File to write: .csv, .parquet, .xlsx, .sav or .dta; without a suffix, the input's format "
                   "(refused if it exists, unless --force).")
@force_option
@quiet_option
def score(data, treatment_path, control_path, events_path, plan_path, out_file, force, quiet):
    """Score the questionnaires (ASCOT, GHQ-12, EQ-5D, carer) from item answers.

    \b
    Writes the input columns plus every score column, and prints per score, wave
    and arm: N scored, N missing and why, mean and range.
    Examples:
      phb-eval score cohort.csv --out scored.csv
      phb-eval score cohort.sav --plan my_plan.yaml --out scored.parquet
    """
    from .instruments import score_all
    from .io import write_table
    from .progress import configure, stage
    from .validate import ensure_valid
    configure(quiet=quiet)
    plan = _load_plan(plan_path)
    target = Path(out_file)
    if not target.suffix:  # same format as the input unless --out names one
        target = target.with_suffix(Path(data or treatment_path).suffix.lower())
    _check_score_target(target, force, [data, treatment_path, control_path, events_path,
                                        *_plan_inputs(plan, plan_path)])
    cohort = _load_cohort(data, treatment_path, control_path, events_path, plan)
    with stage("validate"):
        problems = ensure_valid(cohort, plan)
    for problem in problems:
        _echo_err(f"warning: {problem}", quiet)
    with stage("score"):
        scored = score_all(cohort.frame, plan, base_dir=_plan_dir(plan_path))
    try:
        with stage("writing"):
            write_table(scored.frame, target)
    except OSError as exc:
        from .report.outdir import system_error
        raise system_error(exc, target, "writing the scored file") from None
    for text in scored.warnings:
        _echo_err(f"warning: {text}", quiet)
    for text in scored.notes:
        _echo_err(f"note: {text}", quiet)
    if not quiet:
        summary = scored.summary.copy()
        click.echo(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"), err=True)
    click.echo(f"wrote {target}: {len(scored.frame)} rows, {len(scored.score_columns)} score column(s)")


@cli.command(context_settings=CONTEXT)
@analysis_options
@click.option("--subgroups", "with_subgroups", is_flag=True, help="Also run the subgroup analyses of the plan.")
def compare(data, treatment_path, control_path, events_path, plan_path, out_dir, formats, no_disclosure, engine,
            spark_master, seed, force, quiet, with_subgroups):
    """Compare PHB holders with controls: balance, flow, effects, service use, costs, cost-effectiveness.

    \b
    Writes DIR/report.html, DIR/results.json, DIR/tables/*.csv, DIR/tables.xlsx,
    DIR/figures/*.png and DIR/manifest.json.
    Examples:
      phb-eval compare cohort.csv --out results/
      phb-eval compare --treatment phb.xlsx --control control.xlsx --out results/ --plan my_plan.yaml
      phb-eval compare cohort.parquet --events events.parquet --engine spark --out results/ --format html,md
    """
    from . import pipeline
    _analyse(pipeline.compare, (data, treatment_path, control_path, events_path), plan_path, seed, out_dir,
             formats, force, no_disclosure, quiet, engine=engine, spark_master=spark_master,
             subgroups=with_subgroups)


@cli.command(context_settings=CONTEXT)
@analysis_options
def subgroups(data, treatment_path, control_path, events_path, plan_path, out_dir, formats, no_disclosure, engine,
              spark_master, seed, force, quiet):
    """Subgroup effects with joint interaction tests and Holm/BH adjustment.

    \b
    For each subgroup variable and primary outcome of the plan: the effect within each
    level and a joint Wald test (CR1 by site) that the effect is the same across levels.
    Writes the same folder layout as compare.
    Examples:
      phb-eval subgroups cohort.csv --out subgroups/
      phb-eval subgroups cohort.csv --plan my_plan.yaml --out subgroups/ --force
    """
    from . import pipeline
    _analyse(pipeline.subgroups, (data, treatment_path, control_path, events_path), plan_path, seed, out_dir,
             formats, force, no_disclosure, quiet, engine=engine, spark_master=spark_master)


@cli.command("budget-impact", context_settings=CONTEXT)
@plan_option
@click.option("--from-results", "results_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder of a compare run: budgets, indirect-cost changes and bootstrap draws by band.")
@click.option("--demo", is_flag=True, help="Run on a simulated pilot (compare first, then the projection).")
@report_options
@seed_option
@force_option
@quiet_option
def budget_impact(plan_path, results_dir, demo, out_dir, formats, no_disclosure, seed, force, quiet):
    """Project a PHB rollout's budget impact year by year, with uncertainty.

    \b
    Holders, direct spend, indirect savings, double running, decommissioning, net
    impact with an interval from the bootstrap draws, cumulative discounted position,
    the year it becomes cost-neutral, a fan chart and a tornado chart. Settings come
    from the plan's budget_impact section; values it leaves out come from --from-results.
    Examples:
      phb-eval budget-impact --demo --out bi/
      phb-eval budget-impact --from-results results/ --plan rollout.yaml --out bi/
    """
    from . import pipeline
    from .budget_impact import run_budget_impact
    from .progress import configure
    configure(quiet=quiet)
    fmts = _formats(formats)
    plan = _load_plan(plan_path, seed)
    if demo and results_dir:
        raise PhbEvalError("--demo runs on a simulated pilot and cannot be combined with --from-results. "
                           "Fix: drop one of them")
    inputs = [results_dir, *_plan_inputs(plan, plan_path)]
    with _check_out(out_dir, force, inputs):
        if demo:
            results = _demo_compare(plan, None, quiet, seed=2012, subgroups=False)
            bi = pipeline.demo_budget_impact(plan, results)
        elif results_dir:
            bi = run_budget_impact(plan, results_dir=results_dir)
        else:
            bi = run_budget_impact(plan)
        bi.meta.setdefault("command", sys.argv)
        _write(bi, out_dir, plan, fmts, force, no_disclosure, quiet, inputs)


def _demo_compare(plan, plan_path, quiet, *, seed, subgroups):
    """Simulate a pilot-sized cohort (with events), write it to a temporary folder, read it back, compare."""
    import tempfile
    from . import pipeline
    from .io import load_cohort
    from .simulate import simulate_pilot, write_simulation
    _echo_err(f"simulating a pilot-sized cohort (seed {seed}) ...", quiet)
    sim = simulate_pilot(seed=seed, events=True)
    with tempfile.TemporaryDirectory(prefix="phb-eval-demo-") as tmp:
        paths = write_simulation(sim, tmp)
        cohort = load_cohort(data=paths["cohort"], events=paths["events"], plan=plan)
        _echo_err(f"validating and comparing {len(cohort.frame)} participants ...", quiet)
        results = pipeline.compare(cohort, plan, command=sys.argv, quiet=quiet, base_dir=_plan_dir(plan_path),
                                   subgroups=subgroups)
    results.meta["demo"] = {"simulate": {"seed": seed, "n_phb": 1171, "n_control": 1064, "sites": 20,
                                         "events": True},
                            "note": "inputs were simulated; rerun with 'phb-eval demo --seed' to reproduce"}
    return results


@cli.command(context_settings=CONTEXT)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="reports/demo", show_default=True,
              help="Output folder (refused if it exists, unless --force).")
@click.option("--seed", type=int, default=2012, show_default=True, help="Seed of the simulated cohort.")
@plan_option
@force_option
@quiet_option
def demo(out_dir, seed, plan_path, force, quiet):
    """Run the full evaluation on a simulated pilot-sized cohort and print where the report is.

    \b
    Simulates 1,171 PHB holders and 1,064 controls in 20 sites (with record-linked
    events), runs compare with subgroups on it, then a budget-impact projection
    (illustrative rollout settings; budgets and savings from the simulated results).
    Examples:
      phb-eval demo
      phb-eval demo --out /tmp/demo --force --quiet
    """
    from . import pipeline
    from .progress import configure
    configure(quiet=quiet)
    plan = _load_plan(plan_path)
    inputs = _plan_inputs(plan, plan_path)
    with _check_out(out_dir, force, inputs):
        results = _demo_compare(plan, plan_path, quiet, seed=seed, subgroups=True)
        results = pipeline.merge(results, pipeline.demo_budget_impact(plan, results))
        _write(results, out_dir, plan, ("html", "md"), force, False, quiet, inputs)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every ``finally`` and clean-up runs (partial output removed)."""


def _on_sigterm(signum, frame):
    raise Terminated()


SYSTEM_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENAMETOOLONG,
                 errno.ENOTDIR, errno.ELOOP}


def main(argv=None):
    """Entry point: user mistakes print one message and exit 2; bugs exit 1 with a request to report.

    SIGTERM is handled like Ctrl-C: partial output is removed and one sentence says so (exit 143; 130 for
    Ctrl-C). A system error that reaches here (permissions, disk full, long names) is a sentence, exit 2.
    """
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        rc = cli.main(args=argv, prog_name="phb-eval", standalone_mode=False)
    except PhbEvalError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort as exc:  # click turns Ctrl-C (and our SIGTERM) into Abort
        _stopped(exc.__cause__)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except SystemExit:
        raise
    except KeyboardInterrupt as exc:
        _stopped(exc)
    except OSError as exc:
        if exc.errno not in SYSTEM_ERRNOS:
            raise_bug()
        from .report.outdir import system_error
        click.echo(f"error: {system_error(exc, exc.filename or '.', 'reading or writing a file')}", err=True)
        sys.exit(2)
    except Exception:
        raise_bug()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    sys.exit(rc if isinstance(rc, int) else 0)


def _stopped(cause) -> None:
    """Exit after SIGTERM (143) or Ctrl-C (130); the writer has already removed any partial folder."""
    if isinstance(cause, Terminated):
        click.echo("stopped (SIGTERM): the run was ended before it finished; partial output was removed and "
                   "nothing was written. Fix: run the command again", err=True)
        sys.exit(143)
    click.echo("interrupted: partial output was removed and nothing was written", err=True)
    sys.exit(130)


def raise_bug():
    """Print the traceback of the exception being handled and exit 1: a bug in phb-eval."""
    traceback.print_exc()
    click.echo("phb-eval hit an internal error (a bug, not a problem with your data). "
               "Please report it with the command you ran and the traceback above.", err=True)
    sys.exit(1)


if __name__ == "__main__":
    main()
