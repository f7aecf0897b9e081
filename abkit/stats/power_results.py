"""Result objects of the closed-form power functions: sample size, power, MDE.

Frozen dataclasses whose fields are Python floats (scalar inputs) or numpy
arrays of the broadcast shape (grids); ``repr`` shows the headline numbers
and every non-default setting, ``to_frame()`` one row per scenario.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .power_inputs import _ceil, _int_out, _out


def _num(v, digits: int = 4) -> str:
    """Large counts in full with thousands separators (247,204 rather than 2.472e+05), else ``digits`` figures."""
    v = float(v)
    return f"{v:,.0f}" if 1e4 <= abs(v) < 1e15 else f"{v:.{digits}g}"


def _show(x, digits: int = 4) -> str:
    if x is None:
        return "None"
    a = np.asarray(x)
    if a.ndim == 0:
        v = a.item()
        if isinstance(v, float):
            return _num(v, digits) if np.isfinite(v) else "nan"
        return repr(v)
    if a.size == 0:
        return "[]"
    if a.dtype.kind in "fiu":
        finite = a[np.isfinite(a)] if a.dtype.kind == "f" else a
        if finite.size == 0:
            return f"array{a.shape} of nan"
        lo, hi = finite.min(), finite.max()
        return f"array{a.shape} {_num(lo, digits)}..{_num(hi, digits)}"
    return f"array{a.shape}"


_NEUTRAL = {"margin": 0.0, "arms": 2, "design_effect": 1.0, "variance_reduction": 0.0}


def _neutral(result, key, value) -> bool:
    """Fields left out of the repr when they hold their do-nothing value."""
    a = np.asarray(value)
    if a.dtype.kind == "f" and a.size and np.all(np.isnan(a)):
        return True
    if key == "alpha_per_comparison":
        return bool(np.all(a == np.asarray(result.alpha)))
    return key in _NEUTRAL and a.ndim == 0 and a.item() == _NEUTRAL[key]


class _Result:
    """Shared behaviour: a readable repr and a tidy frame."""

    _headline: tuple[str, ...] = ()
    # fields every result dataclass declares (annotations only: a plain base adds no dataclass fields)
    method: str
    note: str

    def _items(self):
        return [(f.name, getattr(self, f.name)) for f in fields(self)]

    def __repr__(self) -> str:
        head = ", ".join(f"{k}={_show(getattr(self, k))}" for k in self._headline)
        skip = set(self._headline) | {"method", "note"}
        parts = []
        for k, v in self._items():
            if k in skip or v is None or _neutral(self, k, v):
                continue
            parts.append(f"{k}={_show(v)}")
        note = f"; note: {self.note}" if self.note else ""
        return f"{type(self).__name__}({head}; {', '.join(parts)}; {self.method}{note})"

    def to_dict(self) -> dict:
        return dict(self._items())

    def to_frame(self):
        """One row per scenario (array inputs are flattened in C order)."""
        import pandas as pd

        items = {k: v for k, v in self._items() if k != "note"}
        shape = np.broadcast_shapes(*(np.shape(v) for v in items.values() if not isinstance(v, str) and v is not None))
        cols = {}
        for k, v in items.items():
            if v is None:
                continue
            cols[k] = np.broadcast_to(np.asarray(v), shape).ravel() if shape else [v]
        return pd.DataFrame(cols)


@dataclass(frozen=True, repr=False, eq=False)
class SampleSizeResult(_Result):
    """Units needed per arm (exact floats) and the rounded-up total.

    ``total = ceil(n_control) + (arms - 1) ceil(n_treatment)``. For a
    cluster-randomized design ``n_*`` count units, ``n_clusters_*`` clusters
    and ``total_clusters`` rounds clusters up per arm.
    """

    n_control: float | np.ndarray
    n_treatment: float | np.ndarray
    total: int | np.ndarray
    mde: float | np.ndarray
    relative_mde: float | np.ndarray
    power: float | np.ndarray
    alpha: float | np.ndarray
    alpha_per_comparison: float | np.ndarray
    alternative: str
    ratio: float | np.ndarray
    arms: int
    margin: float | np.ndarray
    baseline: float | np.ndarray
    sd: float | np.ndarray  # as given, before CUPED (adjusted: sd * sqrt(1 - variance_reduction))
    variance_reduction: float | np.ndarray
    design_effect: float | np.ndarray
    n_clusters_control: float | np.ndarray | None
    n_clusters_treatment: float | np.ndarray | None
    total_clusters: int | np.ndarray | None
    method: str
    note: str = ""

    _headline = ("n_control", "n_treatment", "total")

    @property
    def per_arm(self):
        """The larger arm size, rounded up (convenient for equal allocation)."""
        return _int_out(_ceil(np.maximum(self.n_control, self.n_treatment)))


@dataclass(frozen=True, repr=False, eq=False)
class PowerResult(_Result):
    """Power of the design at the given effect."""

    power: float | np.ndarray
    mde: float | np.ndarray
    relative_mde: float | np.ndarray
    n_control: float | np.ndarray
    n_treatment: float | np.ndarray
    alpha: float | np.ndarray
    alpha_per_comparison: float | np.ndarray
    alternative: str
    ratio: float | np.ndarray
    arms: int
    margin: float | np.ndarray
    baseline: float | np.ndarray
    sd: float | np.ndarray
    variance_reduction: float | np.ndarray
    design_effect: float | np.ndarray
    method: str
    note: str = ""

    _headline = ("power",)


@dataclass(frozen=True, repr=False, eq=False)
class MDEResult(_Result):
    """Minimum detectable effect (absolute, and relative to the baseline when known).

    For a two-sided test ``mde`` is the magnitude (means are symmetric);
    proportions report the direction solved (``treatment_value``). With a
    non-inferiority ``margin`` it is the smallest true effect at which
    non-inferiority is shown with the target power (may be negative).
    """

    mde: float | np.ndarray
    relative_mde: float | np.ndarray
    treatment_value: float | np.ndarray
    power: float | np.ndarray
    n_control: float | np.ndarray
    n_treatment: float | np.ndarray
    alpha: float | np.ndarray
    alpha_per_comparison: float | np.ndarray
    alternative: str
    ratio: float | np.ndarray
    arms: int
    margin: float | np.ndarray
    baseline: float | np.ndarray
    sd: float | np.ndarray
    variance_reduction: float | np.ndarray
    design_effect: float | np.ndarray
    method: str
    note: str = ""

    _headline = ("mde", "relative_mde")


def _relative(effect, baseline):
    with np.errstate(divide="ignore", invalid="ignore"):
        return effect / baseline


def _sample_size_result(
    n1, k, eff, base, pw, alpha, alpha_c, alternative, arms, margin, sd, vr, de, m, method, note=""
) -> SampleSizeResult:
    n1 = np.asarray(n1, dtype=np.float64)
    n2 = n1 * k
    total = _ceil(n1) + (arms - 1) * _ceil(n2)
    if m is not None:
        kc, kt = n1 / m, n2 / m
        tc = _int_out(_ceil(kc) + (arms - 1) * _ceil(kt))
        kc, kt = _out(kc), _out(kt)
    else:
        kc = kt = tc = None
    return SampleSizeResult(
        n_control=_out(n1),
        n_treatment=_out(n2),
        total=_int_out(total),
        mde=_out(eff),
        relative_mde=_out(_relative(eff, base)),
        power=_out(pw),
        alpha=_out(alpha),
        alpha_per_comparison=_out(alpha_c),
        alternative=alternative,
        ratio=_out(k),
        arms=int(arms),
        margin=_out(margin),
        baseline=_out(base),
        sd=_out(sd),
        variance_reduction=_out(vr),
        design_effect=_out(de),
        n_clusters_control=kc,
        n_clusters_treatment=kt,
        total_clusters=tc,
        method=method,
        note=note,
    )
