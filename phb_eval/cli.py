"""The phb-eval command line: parses arguments, loads the plan, calls the library. No statistics here."""
from __future__ import annotations

import functools
import json
import sys
import traceback
from pathlib import Path

import click

from . import __version__
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


def _load_cohort(data, treatment_path, control_path, events_path, plan):
    if data is None and not (treatment_path and control_path):
        raise PhbEvalError("no data given. Fix: give one DATA file with a 'group' column, "
                           "or both --treatment FILE and --control FILE")
    if data is not None and (treatment_path or control_path):
        raise PhbEvalError("give either one DATA file or --treatment and --control, not both")
    if bool(treatment_path) != bool(control_path):
        raise PhbEvalError("--treatment and --control go together: give both files")
    from .io import load_cohort
    return load_cohort(data=data, treatment=treatment_path, control=control_path, events=events_path, plan=plan)


def _echo_err(msg, quiet=False):
    if not quiet:
        click.echo(msg, err=True)


# ---- the group ------------------------------------------------------------------------------------
@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="phb-eval")
def cli():
    """Evaluate NHS personal health budget (PHB) pilots.

    \b
    Typical session:
      phb-eval simulate --out pilot/            # a synthetic pilot-like cohort
      phb-eval validate pilot/cohort.csv        # check it against the data contract
      phb-eval init my_plan.yaml                # a commented analysis plan to edit
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
def validate(data, treatment_path, control_path, events_path, plan_path, as_json):
    """Check cohort files against the data contract and report every problem at once.

    \b
    Exit status: 0 valid (warnings allowed), 2 problems found.
    Examples:
      phb-eval validate cohort.csv
      phb-eval validate --treatment phb.sav --control control.dta --events events.parquet
      phb-eval validate cohort.xlsx --plan my_plan.yaml --json
    """
    from .validate import validate_cohort
    plan = _load_plan(plan_path)
    cohort = _load_cohort(data, treatment_path, control_path, events_path, plan)
    problems = validate_cohort(cohort, plan)
    errors = [p for p in problems if p.level == "error"]
    warnings = [p for p in problems if p.level != "error"]
    if as_json:
        click.echo(json.dumps({"valid": not errors, "errors": len(errors), "warnings": len(warnings),
                               "problems": [p.to_dict() for p in problems]}, indent=2, default=str))
    else:
        for p in problems:
            click.echo(f"{p.level}: {p}")
        n = len(cohort.frame)
        verdict = "valid" if not errors else "NOT valid"
        click.echo(f"{verdict}: {n} participants, {len(errors)} error(s), {len(warnings)} warning(s)")
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


def main(argv=None):
    """Entry point: user mistakes print one message and exit 2; bugs exit 1 with a request to report."""
    try:
        rc = cli.main(args=argv, prog_name="phb-eval", standalone_mode=False)
    except PhbEvalError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception:
        traceback.print_exc()
        click.echo("phb-eval hit an internal error (a bug, not a problem with your data). "
                   "Please report it with the command you ran and the traceback above.", err=True)
        sys.exit(1)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
