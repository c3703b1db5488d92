"""The design of every model: the plan's adjustment set read once, then one model matrix per fit.

A covariate is a model term as ``formulaic`` reads it (R's formula language): a column name (``age``,
``ghq12_likert_t0``), a transform (``log1p(inpatient_days_pre)``, ``log``, ``sqrt``, ``exp``), a factor
(``C(site)``; naming the cluster column gives the same site fixed effects) or an interaction (``sex:age``,
``sex*age``). Text and 0/1-bool columns are treatment-coded with the first level in sorted order as the
reference, as R's ``contr.treatment`` on a factor built from the same strings (names as patsy:
``sex[T.male]``). Terms are checked before anything is evaluated: only names, numbers, arithmetic and
the functions above are allowed, so a plan cannot run code.

Treatment is coded 1 for the treated arm (PHB) and 0 for controls, under the treatment column's own name.
Each model adds its own baseline term unless the adjustment set already has it (no double entry).
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import EstimationError, PlanError

__all__ = ["Term", "parse_terms", "term_variables", "split_available", "design_matrix", "Design",
           "build_design", "IDENTIFIER_COLUMNS", "FUNCTIONS"]

FUNCTIONS = {"log1p": np.log1p, "log": np.log, "sqrt": np.sqrt, "exp": np.exp}
IDENTIFIER_COLUMNS = ("participant_id",)
_FACTOR = "C"


@dataclass(frozen=True)
class Term:
    """One covariate term: its text as formulaic will read it and the data columns it uses."""

    text: str
    variables: tuple[str, ...]


def _factor_variables(expr: str, term: str) -> list[str]:
    """Column names one factor expression reads; refuses anything but names, numbers, arithmetic and
    the allowed functions (a plan must not be able to run code through formulaic's evaluator)."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        raise PlanError(f"covariates: {term!r} is not a model term (cannot read {expr!r}). Fix: give a column "
                        "name, log1p(column), C(column) or an interaction such as sex:age") from None
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            fn = node.func.id if isinstance(node.func, ast.Name) else None
            if fn not in FUNCTIONS and fn != _FACTOR or node.keywords:
                raise PlanError(f"covariates: {term!r} calls {ast.unparse(node.func)!r}, which a plan may not "
                                f"use. Fix: use one of {', '.join([*FUNCTIONS, _FACTOR])} on a column")
            if fn == _FACTOR and (len(node.args) != 1 or not isinstance(node.args[0], ast.Name)):
                raise PlanError(f"covariates: {term!r}: C() takes one column name, e.g. C(site)")
        elif isinstance(node, ast.Name):
            if node.id not in FUNCTIONS and node.id != _FACTOR:
                names.append(node.id)
        elif not isinstance(node, (ast.Expression, ast.Constant, ast.BinOp, ast.UnaryOp, ast.Load,
                                   ast.operator, ast.unaryop)):
            raise PlanError(f"covariates: {term!r} uses {type(node).__name__} syntax, which a plan may not use. "
                            "Fix: give a column name, log1p(column), C(column) or an interaction such as sex:age")
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float)):
            raise PlanError(f"covariates: {term!r} holds the text {node.value!r}; a term names columns")
    return names


def parse_terms(covariates, *, cluster: str | None = None, identifiers=IDENTIFIER_COLUMNS) -> list[Term]:
    """Plan covariates as checked terms (raises PlanError with a sentence for one that cannot be used).

    ``a*b`` becomes ``a + b + a:b``; a bare cluster column becomes ``C(<cluster>)`` (fixed effects even
    when site codes are numbers). Identifier columns may not be covariates.
    """
    from formulaic import Formula

    out: list[Term] = []
    if isinstance(covariates, str):
        covariates = [covariates]
    for raw in covariates or ():
        if not isinstance(raw, str) or not raw.strip():
            raise PlanError(f"covariates: {raw!r} is not a model term; give column names as text")
        text = raw.strip()
        if re.search(r"(^|[\s~+])-|~|\|", text) or re.fullmatch(r"[01]", text):
            raise PlanError(f"covariates: {text!r}: a covariate adds terms; it cannot remove the intercept or "
                            "hold '~', '|' or '-'. Fix: list the terms to adjust for")
        try:
            formula = Formula(text)
        except Exception as exc:  # formulaic's parser raises several exception types; all mean "unreadable"
            why = re.sub(r"\x1b\[[0-9;]*m|[\u29da\u29db]", "", str(exc)).splitlines()[0]
            raise PlanError(f"covariates: {text!r} is not a model term formulaic can read ({why}). Fix: give a "
                            "column name, log1p(column), C(column) or an interaction such as sex:age") from None
        for term in formula:
            factors = [str(f.expr) for f in term.factors]
            if factors == ["1"]:
                continue
            variables = []
            for expr in factors:
                variables.extend(_factor_variables(expr, text))
            for v in variables:
                if v in identifiers:
                    raise PlanError(f"covariates: {text!r} uses '{v}', an identifier: one value per person "
                                    "cannot be adjusted for. Fix: remove it from the plan's covariates")
            parts = [f"{_FACTOR}({e})" if cluster is not None and e == cluster else e for e in factors]
            out.append(Term(":".join(parts), tuple(dict.fromkeys(variables))))
    return list({t.text: t for t in out}.values())


def term_variables(terms) -> list[str]:
    """The data columns a list of terms reads, in order of first use."""
    return list(dict.fromkeys(v for t in terms for v in t.variables))


def split_available(terms, columns) -> tuple[list[Term], list[Term]]:
    """(terms whose columns are all present, terms that read an absent column)."""
    have = set(columns)
    ok = [t for t in terms if all(v in have for v in t.variables)]
    return ok, [t for t in terms if t not in ok]


def _as_terms(covariates, cluster=None) -> list[Term]:
    if covariates and all(isinstance(c, Term) for c in covariates):
        return list(covariates)
    return parse_terms(covariates, cluster=cluster)


def _model_frame(data: pd.DataFrame, variables, factors=()) -> pd.DataFrame:
    """Columns as formulaic should see them: 0/1-bool, text and C() columns as categories, numbers as floats."""
    out = {}
    for v in variables:
        col = data[v]
        if v in factors and pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            num = col.astype(float)
            out[v] = num.map(lambda x: f"{x:g}").where(num.notna())
        elif pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
            out[v] = col.astype(str)
        else:
            out[v] = col.astype(float)
    return pd.DataFrame(out, index=data.index)


def design_matrix(data: pd.DataFrame, terms, *, cluster: str | None = None) -> pd.DataFrame:
    """Intercept plus ``terms`` (column names or :class:`Term`), built by formulaic on ``data``'s rows.

    Levels come from ``data`` (the analysed rows), so a level absent after exclusions gets no column.
    The intercept column is ``Intercept``. Raises EstimationError when a term cannot be evaluated (e.g.
    ``log`` of a zero) and for missing values in the columns used.
    """
    from formulaic import model_matrix

    terms = _as_terms(list(terms), cluster)
    variables = term_variables(terms)
    absent = [v for v in variables if v not in data.columns]
    if absent:
        raise EstimationError(f"column(s) {absent} are not in the data; supply them or remove them from the "
                              "plan's covariates")
    factors = {m for t in terms for m in re.findall(r"\bC\((\w+)\)", t.text)}
    frame = _model_frame(data, variables, factors)
    if frame.isna().any().any():
        bad = frame.columns[frame.isna().any()].tolist()
        raise EstimationError(f"covariate column(s) {bad} have missing values among the rows analysed; impute "
                              "them or use complete cases")
    rhs = " + ".join(["1", *(t.text for t in terms)])
    with np.errstate(all="ignore"):
        try:
            mm = model_matrix(rhs, frame, context=dict(FUNCTIONS), ensure_full_rank=True, na_action="ignore")
        except Exception as exc:  # formulaic wraps numpy/pandas errors; each means this term cannot be built
            raise EstimationError(f"the covariate terms {[t.text for t in terms]} cannot be evaluated on these "
                                  f"data ({exc}); check the columns they use") from None
    X = pd.DataFrame(np.asarray(mm, dtype=float), index=data.index, columns=list(mm.columns))
    if not np.isfinite(X.to_numpy()).all():
        bad = X.columns[~np.isfinite(X.to_numpy()).all(axis=0)].tolist()
        raise EstimationError(f"covariate term(s) {bad} give infinite or undefined values (e.g. log of 0); "
                              "use log1p() or another transform")
    return X


def _full_rank(X: np.ndarray, tol: float = 1e-10) -> bool:
    """Full column rank from the R factor of a QR decomposition (cheaper than an SVD on tall designs)."""
    scale = np.sqrt((X ** 2).sum(axis=0))
    if np.any(scale == 0):
        return False
    r = np.abs(np.diag(np.linalg.qr(X / scale, mode="r")))
    return bool(r.min() > tol * r.max())


@dataclass
class Design:
    """Analysed rows, response, model matrix, cluster codes, weights and offset of one model."""

    y: pd.Series
    X: pd.DataFrame
    data: pd.DataFrame
    cluster: np.ndarray
    n_clusters: int
    treatment: str
    n_phb: int
    n_control: int
    weights: pd.Series | None = None
    offset: np.ndarray | None = None
    n_dropped: int = 0
    clusters_per_arm: tuple[int, int] = (0, 0)
    notes: list = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return list(self.X.columns)

    @property
    def groups(self) -> np.ndarray:
        """Cluster codes 0..G−1 (the name statsmodels uses)."""
        return self.cluster


def _treatment_codes(col: pd.Series, treatment: str, treated, what: str) -> pd.Series:
    """1 = treated, 0 = control; a 0/1 column as it is, a two-level text column with ``treated`` (or its
    second sorted level, R's default) as 1."""
    num = pd.to_numeric(col, errors="coerce")
    if col.dropna().size and num.notna().sum() == col.notna().sum() and not pd.api.types.is_bool_dtype(col):
        if treated is not None and treated not in (1, "1", 1.0):
            return (num == float(treated)).astype(float).where(num.notna())
        bad = num.notna() & ~num.isin([0, 1])
        if bad.any():
            raise EstimationError(f"{what}: treatment column '{treatment}' must be 0/1; found "
                                  f"{sorted(num[bad].unique())[:5]}")
        return num
    as_str = col.astype(str).where(col.notna())
    levels = sorted(as_str.dropna().unique())
    if treated is None:
        if len(levels) != 2:
            raise EstimationError(f"{what}: treatment column '{treatment}' has {len(levels)} levels "
                                  f"({levels[:5]}); give a 0/1 column or name the treated level")
        treated = levels[1]
    return (as_str == str(treated)).astype(float).where(as_str.notna())


def _plain(term: str) -> str:
    return term.replace(" ", "")


def model_columns(df: pd.DataFrame, needed, what: str) -> pd.DataFrame:
    """A copy of the columns a model reads; a column the data lack is a sentence, not a KeyError."""
    absent = [c for c in needed if c not in df.columns]
    if absent:
        raise EstimationError(f"{what}: column(s) {absent} not in the analysis data; supply them or remove "
                              "them from the plan's covariates")
    return df[needed].copy()


def build_design(df: pd.DataFrame, response: str, *, treatment: str = "phb", covariates=(), cluster: str = "site",
                 weights=None, baseline: str | Term | None = None, change_from: str | None = None,
                 offset: str | None = None, treated=None, what: str = "model", min_clusters: int = 2,
                 extra: pd.DataFrame | None = None, include_treatment: bool = True) -> Design:
    """Complete cases, treatment coding and the model matrix of one model (raises EstimationError).

    Parameters
    ----------
    response : outcome column.
    treatment : treatment column (0/1, or two-level text with ``treated`` as the treated level).
    covariates : plan terms (text or :class:`Term`).
    baseline : the model's own baseline term (a column, or e.g. ``"log1p(gp_consultations_pre)"``), added
        after the treatment unless the adjustment set already has it.
    change_from : column subtracted from the response (difference in differences).
    weights : column name, Series aligned with ``df`` or array; rows with missing or zero weight are left out.
    offset : column of exposure (> 0); ``log`` of it becomes the offset.
    extra : columns to append to the matrix (e.g. subgroup indicators), aligned with ``df``.
    include_treatment : False leaves the treatment column out of the matrix (the extra columns carry it).
    """
    terms = _as_terms(list(covariates), cluster)
    base_terms = []
    if baseline is not None:
        base = baseline if isinstance(baseline, Term) else parse_terms([baseline])[0]
        if _plain(base.text) not in {_plain(t.text) for t in terms}:
            base_terms = [base]
    all_terms = base_terms + terms
    needed = list(dict.fromkeys([response, treatment, cluster, *term_variables(all_terms)]
                                + ([change_from] if change_from else []) + ([offset] if offset else [])))
    data = model_columns(df, needed, what)
    data["__t"] = _treatment_codes(df[treatment], treatment, treated, what)
    if weights is not None:
        data["__w"] = _weights(df, weights)
    if extra is not None:
        extra = extra.reindex(df.index)
        for c in extra.columns:
            data[f"__x_{c}"] = extra[c]
    n_all = len(data)
    data = data.dropna()
    if weights is not None:
        data = data[data["__w"] > 0]
    n1, n0 = int((data["__t"] == 1).sum()), int((data["__t"] == 0).sum())
    if n1 == 0 or n0 == 0:
        empty = "PHB" if n1 == 0 else "control"
        raise EstimationError(f"{what}: no {empty} participants left after excluding incomplete rows "
                              f"({n1} PHB, {n0} control with {needed} observed); the comparison needs both arms")
    codes, uniques = pd.factorize(data[cluster].astype(str))
    G = len(uniques)
    if G < min_clusters:
        raise EstimationError(f"{what}: all {len(data)} analysed people are in one {cluster} "
                              f"({data[cluster].iloc[0]!r}), so cluster-robust errors by {cluster} cannot be "
                              f"estimated (they need at least 2 clusters); analyse more than one {cluster}")
    for v in term_variables(terms):
        if data[v].nunique() <= 1:
            raise EstimationError(f"{what}: covariate '{v}' is constant ({data[v].iloc[0]!r}) among the "
                                  f"{len(data)} people analysed; remove it from the plan's covariates")
    resp = data[response].astype(float)
    if change_from:
        resp = resp - data[change_from].astype(float)
    X = design_matrix(data, all_terms)
    if include_treatment:
        X.insert(1, treatment, data["__t"].astype(float))
    if extra is not None:
        for c in extra.columns:
            X[c] = data[f"__x_{c}"].astype(float)
    if X.shape[0] <= X.shape[1] or not _full_rank(X.to_numpy()):
        raise EstimationError(f"{what}: the model is not identifiable on the {len(data)} analysed people "
                              f"({X.shape[1]} coefficients; collinear covariates, or a category with everyone "
                              "in one arm?); simplify the plan's covariates")
    off = None
    if offset:
        expo = data[offset].astype(float)
        if (expo <= 0).any():
            raise EstimationError(f"{what}: exposure column '{offset}' must be > 0")
        off = np.log(expo.to_numpy())
    t = data["__t"].to_numpy()
    g1, g0 = len(np.unique(codes[t == 1])), len(np.unique(codes[t == 0]))
    notes = []
    if len(data) < n_all:
        notes.append(f"{n_all - len(data)} people without {response} or a covariate were left out (complete cases)")
    return Design(resp.rename("y"), X, data, codes, G, treatment, n1, n0,
                  data["__w"] if weights is not None else None, off, n_all - len(data), (g1, g0), notes)


def _weights(df: pd.DataFrame, weights) -> pd.Series:
    if isinstance(weights, str):
        if weights not in df.columns:
            raise EstimationError(f"weights column '{weights}' is not in the analysis data")
        w = df[weights]
    elif isinstance(weights, pd.Series):
        w = weights.reindex(df.index)
    else:
        w = pd.Series(np.asarray(weights, dtype=float), index=df.index)
        if len(w) != len(df):
            raise EstimationError(f"weights have length {len(w)} but the data have {len(df)} rows")
    w = pd.to_numeric(w, errors="coerce").astype(float)
    if (w < 0).any():
        raise EstimationError(f"weights must be non-negative; found {int((w < 0).sum())} negative value(s)")
    return w
