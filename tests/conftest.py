"""Shared test helpers: Spark local mode (needs pyspark and Java 17; CI must run these tests)."""

from __future__ import annotations

import os
import shutil

import pytest


def require_spark() -> None:
    """Skip locally when pyspark or a JVM is missing; in CI (CI=true) fail instead."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("pyspark not installed")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        if os.environ.get("CI") == "true":
            raise RuntimeError("Spark tests need Java (JDK 17); install it or set JAVA_HOME")
        pytest.skip("no Java runtime for Spark local mode (install JDK 17 to run these tests)")


@pytest.fixture(scope="module")
def spark():
    """A local-mode SparkSession for one test module."""
    require_spark()
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("abkit-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
