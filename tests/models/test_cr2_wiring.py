"""The outcome estimators with variance="cr2" equal clubSandwich (CR2 + Satterthwaite) on the outcome golden
data (tests/golden/outcomes_cr2_golden.R): the core hands variance.py the right design, residuals and weights."""
import json
from pathlib import Path

import pandas as pd
import pytest

from phb_eval import outcomes

pytest.importorskip("phb_eval.models.variance")
GOLDEN = Path(__file__).parent.parent / "golden"
COVS = ["age", "sex", "condition"]


@pytest.fixture(scope="module")
def data():
    d = pd.read_csv(GOLDEN / "outcomes_golden_data.csv")
    ps = json.loads((GOLDEN / "outcomes_golden.json").read_text())["propensity"]
    return d.assign(w_att=d["participant_id"].map(dict(zip(ps["participant_id"], ps["w_att"]))))


CASES = {
    "ancova_95": lambda d: outcomes.ancova(d, "y", COVS, variance="cr2").iloc[0],
    "did_95": lambda d: outcomes.did(d, "y", COVS, variance="cr2").iloc[0],
    "binary_rd_95": lambda d: outcomes.binary_effects(d, "b", COVS, variance="cr2").iloc[0],
    "binary_or_95": lambda d: outcomes.binary_effects(d, "b", COVS, variance="cr2").iloc[1],
    "ipw_att_ancova_95": lambda d: outcomes.ancova(d, "y", COVS, weights="w_att", variance="cr2").iloc[0],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_cr2_rows_match_clubsandwich(case, data):
    ref = {c["case"]: c for c in json.loads((GOLDEN / "outcomes_cr2_golden.json").read_text())["cases"]}[case]
    row = CASES[case](data)
    assert "_cr2_site" in row["method"]
    for key, col in (("estimate", "estimate"), ("se", "se"), ("df", "df"), ("p_value", "p_value"),
                     ("ci_low", "ci_low"), ("ci_high", "ci_high")):
        assert row[col] == pytest.approx(ref[key], rel=1e-6), key
    assert row["n_clusters"] == ref["n_clusters"]
    assert "fewer than 10 per arm" in row["note"]            # 9 sites: said beside the row
