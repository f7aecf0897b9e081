"""abkit: experimentation and impact analysis for e-commerce aftersales.

>>> import abkit
>>> df = abkit.simulate.ab_data(20_000, effects={"refund_rate": -0.05}, seed=1)
>>> result = abkit.analyze(df, [abkit.Ratio("refunds", "orders", name="refund_rate",
...                                          covariates=("pre_refunds", "pre_orders"))])
>>> result.to_frame()  # doctest: +SKIP
"""

from . import engines  # noqa: F401  (abkit.engines.table)
from .errors import AbkitError, ColumnNotFoundError, DataError, ReadoutError, SpecError
from .metrics import NPS, Mean, Metric, Proportion, Quantile, Ratio, TimeToEvent
from .moments import Moments, MomentSet

del moments  # type: ignore[name-defined]  # noqa: F821 - the submodule bound by the import above; `abkit.moments` is the function (see _FROM_MODULE)

__version__ = "0.1.0"

_LAZY = ("simulate", "did", "power", "sequential", "integrity", "portfolio", "spec", "time_to_event")
# Names that load on first use, with their module: the analysis stack imports pandas and scipy.stats
# (about a second of CPU), which `abkit validate`, `abkit schema` and code that only builds metrics or
# specs do not need; the spec models (pydantic) likewise.
_FROM_MODULE = {
    "analyze": "analysis",
    "moments": "aggregation",
    "ExperimentResult": "results",
    "quantile_effect": "quantile",
    "analyze_time_to_event": "time_to_event",
    "SegmentResult": "segments",
    "analyze_segments": "segments",
    "ExperimentSpec": "spec",
    "load_spec": "spec",
}


def __getattr__(name: str):
    # Submodules with heavier imports load on first use (and
    # `python -m abkit.simulate` does not import the module twice).
    if name in _LAZY or name in _FROM_MODULE:
        import importlib

        module = importlib.import_module(f".{_FROM_MODULE.get(name, name)}", __name__)
        value = getattr(module, name) if name in _FROM_MODULE else module
        globals()[name] = value
        return value
    raise AttributeError(f"module 'abkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "AbkitError",
    "ColumnNotFoundError",
    "DataError",
    "ReadoutError",
    "SpecError",
    "ExperimentResult",
    "Mean",
    "Metric",
    "MomentSet",
    "Moments",
    "Proportion",
    "Ratio",
    "analyze",
    "moments",
    "ExperimentSpec",
    "load_spec",
    *_LAZY,
    "NPS",
    "Quantile",
    "quantile_effect",
    "analyze_segments",
    "SegmentResult",
    "TimeToEvent",
    "analyze_time_to_event",
    "time_to_event",
]
