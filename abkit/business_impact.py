"""Impact in business terms: a relative lift turned into "about 18,000 fewer contacts a year, worth EUR 81,000".

A spec may say how much volume stands behind its primary metric::

    impact:
      volume: 12_000_000     # a year: how many `per` the change will apply to once shipped
      per: orders            # what the volume counts: the primary metric's denominator (orders, buyers)
      unit: contacts         # what the metric counts per `per` (contacts per order)
      value: 4.50            # optional: money per unit (a contact costs EUR 4.50)
      currency: EUR          # optional, default EUR

**Arithmetic.** The primary metric is ``unit`` per ``per`` (contacts per
order), so a change ``d`` in it (the absolute effect, treatment - control)
applied to ``volume`` ``per`` a year changes ``volume * d`` ``unit`` a year.
The interval is carried through exactly: the map is linear, so
``volume * [ci_lower, ci_upper]`` has the same confidence (:func:`yearly_impact`).
Money is ``value`` per unit, signed as *gain* for the business: a unit of a
lower-is-better metric (a contact, a refund) is a cost, so fewer of them is a
gain; a unit of a higher-is-better metric (a repeat purchase) is a gain.

The ``volume`` is what the change will meet once shipped (the eligible
orders a year, not all orders when only returns under EUR 40 were in the
test). The relative form gives the same point: ``volume * |control_value| *
rel_effect`` (:func:`impact_weight` is ``volume * |control_value|``; a relative
lift is relative to the size of the control value, so that its sign is the
sign of the absolute effect also when the baseline is negative), which is
how the programme view turns shrunk relative lifts into yearly units.

**Words.** An estimate and its bounds are rounded alike, to two significant
digits (:func:`round_about`: 18,000 with CI 6,000 to 30,000), and read
"about": these are planning figures, not accounting ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import SpecError

__all__ = [
    "ImpactSpec",
    "YearlyImpact",
    "yearly_impact",
    "impact_of",
    "impact_weight",
    "impact_sentence",
    "round_about",
    "money_sign",
]

_KEYS = ("volume", "per", "unit", "value", "currency")


@dataclass(frozen=True)
class ImpactSpec:
    """The ``impact:`` block of a spec (see the module docstring)."""

    volume: float
    unit: str
    per: str = "units"
    value: float | None = None
    currency: str = "EUR"

    @classmethod
    def parse(cls, raw: Any, where: str = "impact") -> tuple[ImpactSpec | None, list[tuple[str, str]]]:
        """``(spec or None, problems)``: every problem as ``(where, message)``, for a spec parser to collect."""
        problems: list[tuple[str, str]] = []
        example = "{volume: 12000000, per: orders, unit: contacts, value: 4.50}"
        if raw is None:
            return None, problems
        if not isinstance(raw, Mapping):
            return None, [(where, f"expected a mapping like `impact: {example}`, got {raw!r}")]
        for key in raw:
            if key not in _KEYS:
                import difflib

                close = difflib.get_close_matches(str(key), _KEYS, n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                problems.append((f"{where}.{key}", f"unknown key '{key}'.{hint} Allowed keys: {', '.join(_KEYS)}"))

        def number(key: str, required: bool) -> float | None:
            value = raw.get(key)
            if value is None:
                if required:
                    message = (
                        f"required; e.g. `{key}: 12000000` (how many {raw.get('per') or 'orders'} a year "
                        "the change applies to)"
                    )
                    problems.append((f"{where}.{key}", message))
                return None
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                problems.append((f"{where}.{key}", f"expected a number above 0, got {value!r}"))
                return None
            return float(value)

        def text(key: str, required: bool, default: str | None = None) -> str | None:
            value = raw.get(key)
            if value is None:
                if required:
                    message = f"required; name what the primary metric counts, e.g. `{key}: contacts`"
                    problems.append((f"{where}.{key}", message))
                return default
            if not isinstance(value, str) or not value.strip():
                problems.append((f"{where}.{key}", f"expected a word, got {value!r}"))
                return default
            return value.strip()

        volume = number("volume", True)
        value = number("value", False)
        unit = text("unit", True)
        per = text("per", False, "units")
        currency = text("currency", False, "EUR")
        if problems or volume is None or unit is None:
            return None, problems
        return cls(volume=volume, unit=unit, per=per or "units", value=value, currency=currency or "EUR"), problems

    @classmethod
    def from_dict(cls, raw: Any, where: str = "impact") -> ImpactSpec | None:
        """The block as an :class:`ImpactSpec` (None for None); :class:`abkit.SpecError` listing every problem."""
        spec, problems = cls.parse(raw, where)
        if problems:
            raise SpecError("; ".join(f"{w}: {m}" for w, m in problems))
        return spec

    @classmethod
    def coerce(cls, value: Any) -> ImpactSpec | None:
        """An :class:`ImpactSpec`, a mapping (parsed) or None."""
        if value is None or isinstance(value, ImpactSpec):
            return value
        return cls.from_dict(value)

    def to_dict(self) -> dict:
        out = {"volume": self.volume, "per": self.per, "unit": self.unit}
        if self.value is not None:
            out["value"] = self.value
        out["currency"] = self.currency
        return out


def money_sign(better: str) -> float:
    """+1 when a unit of the metric is a gain (higher is better), -1 when it is a cost (lower is better)."""
    if better not in ("higher", "lower"):
        raise SpecError(f"better={better!r} must be 'higher' or 'lower'")
    return 1.0 if better == "higher" else -1.0


def impact_weight(volume: float, control_value: float) -> float:
    """Units a year per unit of relative lift: ``volume * |control_value|`` (``rel_effect`` times this = units a year).

    ``rel_effect = effect / |control_value|`` (abkit.stats.two_sample), so a negative baseline keeps the sign.
    """
    return float(volume) * abs(float(control_value))


@dataclass(frozen=True)
class YearlyImpact:
    """A change in units a year with its interval, and its money value (gain, + = good) when a value is known."""

    change: float
    lower: float
    upper: float
    unit: str
    better: str
    level: float
    money: float | None = None
    money_lower: float | None = None
    money_upper: float | None = None
    currency: str | None = None

    def sentence(self) -> str:
        """``"about 18,000 fewer contacts a year (95% CI 6,000 to 30,000), worth about EUR 81,000 a year (...)"``."""
        return impact_sentence(
            self.change,
            self.lower,
            self.upper,
            unit=self.unit,
            level=self.level,
            money=self.money,
            money_lower=self.money_lower,
            money_upper=self.money_upper,
            currency=self.currency,
            better=self.better,
        )


def _money(change: float, lower: float, upper: float, value: float | None, better: str):
    if value is None:
        return None, None, None
    sign = money_sign(better) * float(value)
    bounds = sorted((sign * lower, sign * upper))
    return sign * change, bounds[0], bounds[1]


def yearly_impact(
    effect: float, ci_lower: float, ci_upper: float, impact: ImpactSpec | Mapping, *, better: str, level: float = 0.95
) -> YearlyImpact:
    """``volume * effect`` units a year, the interval ``volume * [ci_lower, ci_upper]``, and its money value.

    ``effect`` and its bounds are the primary metric's absolute effect
    (``unit`` per ``per``), e.g. -0.0015 contacts per order.
    """
    spec = ImpactSpec.coerce(impact)
    if spec is None:
        raise SpecError("yearly_impact needs an impact block {volume, unit, ...}, got None")
    vol = spec.volume
    change, lo, hi = vol * float(effect), vol * float(ci_lower), vol * float(ci_upper)
    lo, hi = min(lo, hi), max(lo, hi)
    money, m_lo, m_hi = _money(change, lo, hi, spec.value, better)
    return YearlyImpact(
        change,
        lo,
        hi,
        spec.unit,
        better,
        float(level),
        money,
        m_lo,
        m_hi,
        spec.currency if spec.value is not None else None,
    )


def impact_of(row: Mapping, impact: ImpactSpec | Mapping | None, *, alpha: float = 0.05) -> YearlyImpact | None:
    """The yearly impact of one result row (``ExperimentResult.row(primary, arm)``), or None without an impact.

    Uses the row's absolute ``effect``, ``ci_lower``, ``ci_upper`` and
    ``better``; the interval is the row's own ``1 - alpha`` interval (the
    always-valid one for a sequential result).
    """
    spec = ImpactSpec.coerce(impact)
    if spec is None:
        return None
    return yearly_impact(
        row["effect"], row["ci_lower"], row["ci_upper"], spec, better=row["better"], level=1.0 - float(alpha)
    )


# --------------------------------------------------------------------------- words
def round_about(values) -> tuple[list[float], int]:
    """Round an estimate and its bounds ``[estimate, lower, upper]`` alike: two significant digits.

    The step is two significant digits of ``max(|estimate|, (upper - lower) / 10)``:
    18,000 (CI 6,000 to 30,000) keeps its thousands, and an estimate near 0
    with a wide interval is not shown more precisely than the interval
    allows. Returns ``(rounded values, decimals to show)``; never finer than
    whole units once the reference is 100 or more.
    """
    vals = [float(v) for v in values]
    finite = [v for v in vals if math.isfinite(v)]
    if not finite:
        return vals, 0
    spread = max(finite) - min(finite)
    ref = max(abs(finite[0]), spread / 10.0)
    if ref == 0:
        return [0.0 if math.isfinite(v) else v for v in vals], 0
    step_exp = math.floor(math.log10(ref)) - 1
    if ref >= 100:
        step_exp = max(step_exp, 0)
    step = 10.0**step_exp
    decimals = max(0, -step_exp)
    return [round(v / step) * step if math.isfinite(v) else v for v in vals], decimals


def _fmt(x: float, decimals: int) -> str:
    if round(x, decimals) == 0:
        x = 0.0
    return f"{x:,.{decimals}f}"


def _amount(x: float, decimals: int, currency: str | None) -> str:
    text = _fmt(abs(x), decimals)
    return f"{currency} {text}" if currency else text


def impact_sentence(
    change: float,
    lower: float,
    upper: float,
    *,
    unit: str,
    level: float = 0.95,
    money: float | None = None,
    money_lower: float | None = None,
    money_upper: float | None = None,
    currency: str | None = None,
    better: str = "lower",
    period: str = "a year",
) -> str:
    """Words for a yearly change and its interval (and its money gain), as in the module docstring.

    ``change, lower, upper``: signed units a year (negative = fewer);
    ``money*``: signed gains (positive = good for the business).
    """
    if not all(math.isfinite(x) for x in (change, lower, upper)):
        return f"the change in {unit} {period} cannot be computed (no finite estimate or interval)"
    (c, lo, hi), d = round_about([change, lower, upper])
    ci = f"{level:.0%} CI"
    if c == 0:
        head = f"no change in {unit} {period} to speak of"
    else:
        head = f"about {_fmt(abs(c), d)} {'fewer' if c < 0 else 'more'} {unit} {period}"
    if lo < 0 < hi or c == 0 or (c < 0) != (hi <= 0):
        interval = (
            f"{ci} from {_fmt(abs(lo), d)} {'fewer' if lo < 0 else 'more'} to "
            f"{_fmt(abs(hi), d)} {'fewer' if hi < 0 else 'more'}"
        )
    else:
        near, far = sorted((abs(lo), abs(hi)))
        interval = f"{ci} {_fmt(near, d)} to {_fmt(far, d)}"
    text = f"{head} ({interval})"
    if money is not None and money_lower is not None and money_upper is not None and math.isfinite(money):
        (m, mlo, mhi), md = round_about([money, money_lower, money_upper])
        if m == 0:
            worth = "worth about nothing"
        elif m > 0:
            worth = f"{'saving' if better == 'lower' else 'worth'} about {_amount(m, md, currency)} {period}"
        else:
            worth = f"costing about {_amount(m, md, currency)} {period}"
        if mlo < 0 < mhi or m == 0 or (m < 0) != (mhi <= 0):
            m_interval = (
                f"from a {'loss' if mlo < 0 else 'gain'} of {_amount(mlo, md, currency)} to a "
                f"{'loss' if mhi < 0 else 'gain'} of {_amount(mhi, md, currency)}"
            )
        else:
            near, far = sorted((abs(mlo), abs(mhi)))
            m_interval = f"{_amount(near, md, currency)} to {_amount(far, md, currency)}"
        text += f", {worth} ({ci} {m_interval})"
    return text
