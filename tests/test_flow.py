"""Participant flow counts on a hand-built cohort."""
import numpy as np
import pandas as pd

from phb_eval.flow import participant_flow


def test_flow_counts_by_hand():
    f = pd.DataFrame({
        "phb":          [1, 1, 1, 1, 0, 0, 0],
        "died":         [0, 1, 0, 0, 0, np.nan, 1],
        "age":          [50, 60, 70, np.nan, 40, 45, 80],
        "ascot_raw_t0": [10, 12, 14, 16, 18, 20, 5],
        "ascot_raw_t1": [11, np.nan, np.nan, 15, 17, 21, np.nan],
        "eq_vas_t1":    [50, np.nan, np.nan, 60, 70, np.nan, np.nan],
    })
    flow = participant_flow(f, ["ascot_raw", "eq_vas", "scrqol"], ["age"]).set_index("stage")
    assert flow.loc["recruited"].tolist() == [4, 3]
    assert flow.loc["died before follow-up"].tolist() == [1, 1]
    assert flow.loc["lost to follow-up (alive, no follow-up answers)"].tolist() == [1, 0]
    assert flow.loc["included by imputation (alive at follow-up)"].tolist() == [3, 2]
    # ascot: needs t1, t0 and age -> phb row 0 only (row 3 lacks age); controls rows 4, 5
    assert flow.loc["analysed, complete cases: ascot_raw"].tolist() == [1, 2]
    assert flow.loc["analysed, complete cases: eq_vas"].tolist() == [1, 1]
    assert "analysed, complete cases: scrqol" not in flow.index
