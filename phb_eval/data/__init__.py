"""The input layer: reading an analyst's files and checking them against the data contract.

``readers`` (one file to a raw table) -> ``mapping`` (the plan's column names and missing codes) ->
``cohort`` (contract types, the cohort of one or two participant files and an event file) ->
``validation`` (every problem at once, in ``problems.Problem``); ``events_sql`` does the event checks
out of core in DuckDB and ``events`` hands the event table to the aggregation. The rules themselves
(columns, types, codes, windows) live in ``phb_eval.contract``. Nothing is imported here, so importing a
submodule costs only what it needs.
"""
