"""The summary puts the net-benefit-regression tests (budget size, flexibility, interaction) beside the
per-stratum net benefit, for the headline effect measure at its first λ."""
import pandas as pd

from phb_eval.plan import load_plan
from phb_eval.report.html import nbr_sentence


def test_sentence_names_each_test_with_its_f_df_and_p():
    tests = pd.DataFrame({"effect_measure": ["qaly"] * 3 + ["ascot_years"] * 3, "lambda_gbp": [20000.0] * 6,
                          "test": ["budget_size", "flexibility", "interaction"] * 2,
                          "statistic": [2.88, 0.9, 0.01, 9.0, 9.0, 9.0], "df1": [2.0, 2.0, 1.0] * 2,
                          "df2": [5.46, 5.5, 5.2] * 2, "p_value": [0.14, 0.45, 0.93, 0.001, 0.001, 0.001]})
    cea = pd.DataFrame({"outcome": ["nmb"], "effect_measure": ["qaly"]})
    text = nbr_sentence(tests, cea, load_plan())
    assert "λ = £20,000 per QALY" in text
    assert "budget size (F = 2.88 on 2 and 5.5 df, p = 0.140)" in text
    assert "flexibility" in text and "budget size × flexibility (F = 0.01 on 1 and 5.2 df" in text
    assert "9.00" not in text                      # the other measure's tests are not mixed in
    assert nbr_sentence(None, cea, load_plan()) == ""
