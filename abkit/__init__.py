"""abkit: experimentation and impact analysis for e-commerce aftersales.

    >>> import abkit
    >>> df = abkit.simulate.ab_data(20_000, effects={"refund_rate": -0.05}, seed=1)
    >>> result = abkit.analyze(df, [abkit.Ratio("refunds", "orders", name="refund_rate",
    ...                                          covariates=("pre_refunds", "pre_orders"))])
    >>> result.to_frame()  # doctest: +SKIP
"""
from . import (
    engines,  # noqa: F401  (abkit.engines.table)
    time_to_event,  # noqa: F401  (abkit.time_to_event.*)
)
from .analysis import analyze, moments
from .errors import AbkitError, ColumnNotFoundError, DataError, ReadoutError, SpecError
from .metrics import NPS, Mean, Metric, Proportion, Quantile, Ratio, TimeToEvent
from .moments import Moments, MomentSet
from .quantile import quantile_effect
from .results import ExperimentResult
from .segments import SegmentResult, analyze_segments
from .time_to_event import analyze_time_to_event

__version__ = "0.1.0"

_LAZY = ("simulate", "did", "power", "sequential", "integrity", "portfolio", "spec")
_FROM_SPEC = ("ExperimentSpec", "load_spec")     # the spec models (pydantic) load on first use


def __getattr__(name: str):
    # Submodules with heavier imports load on first use (and
    # `python -m abkit.simulate` does not import the module twice).
    if name in _LAZY or name in _FROM_SPEC:
        import importlib

        module = importlib.import_module(f".{'spec' if name in _FROM_SPEC else name}", __name__)
        return getattr(module, name) if name in _FROM_SPEC else module
    raise AttributeError(f"module 'abkit' has no attribute {name!r}")

__all__ = [
    "AbkitError", "ColumnNotFoundError", "DataError", "ReadoutError", "SpecError",
    "ExperimentResult", "Mean", "Metric", "MomentSet", "Moments", "Proportion", "Ratio",
    "analyze", "moments", "ExperimentSpec", "load_spec", *_LAZY,
    "NPS", "Quantile", "quantile_effect", "analyze_segments", "SegmentResult",
    "TimeToEvent", "analyze_time_to_event", "time_to_event",
]
