"""The Spark session of ``--engine spark``: local on 2 cores unless ``--spark-master`` names a cluster.

Memory is bounded: the driver's heap is ``PHB_EVAL_SPARK_MEMORY`` (default 2g) and Spark spills to disk
beyond it, so a local session aggregates and validates event tables far larger than memory; only per-person
counts and the first offending rows of each rule come back to Python.
"""
from __future__ import annotations

import os

from ..errors import PhbEvalError

__all__ = ["spark_session", "DRIVER_MEMORY"]

DRIVER_MEMORY = os.environ.get("PHB_EVAL_SPARK_MEMORY", "2g")


def spark_session(master: str | None = None):
    """A Spark session: local (2 cores) unless a master URL is given. Needs ``pip install 'phb-eval[spark]'``."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise PhbEvalError("the spark engine needs pyspark. Fix: pip install 'phb-eval[spark]' "
                           "(and Java 17), or use --engine duckdb") from None
    session = (SparkSession.builder.master(master or "local[2]").appName("phb-eval")
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.session.timeZone", "UTC").config("spark.sql.shuffle.partitions", "8")
               .config("spark.sql.debug.maxToStringFields", "1000")
               .config("spark.driver.memory", DRIVER_MEMORY)
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")   # Spark's WARN lines are for Spark developers, not evaluators
    return session
