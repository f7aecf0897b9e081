"""A readout for people who do not open HTML (abkit.readout.digest): summary.md's lines, and the impact in
business terms under the verdict, from real results of the sample specs.

A sample spec is given an ``impact:`` block with :func:`dataclasses.replace`; the spec format's
``impact:`` (parsing, did-you-mean errors, the JSON Schema, the round trip) is tested at the end.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

import abkit
import abkit.verdict
from abkit.business_impact import ImpactSpec, round_about
from abkit.readout import ab, digest

ROOT = Path(__file__).resolve().parent.parent


def with_impact(spec, impact):
    """The sample spec with an ``impact:`` block."""
    return dataclasses.replace(spec, impact=ImpactSpec.coerce(impact))


class WithImpact:
    """A stand-in object with an ``impact:`` block (every other attribute is the wrapped object's)."""

    def __init__(self, spec, impact):
        self._spec, self.impact = spec, impact

    def __getattr__(self, name):
        return getattr(self._spec, name)


def _read(name: str):
    spec = abkit.load_spec(ROOT / "specs" / f"{name}.yaml")
    data = spec.open_data()
    result = abkit.analyze(
        data,
        spec.build_metrics(),
        variant=spec.variant,
        control=spec.control,
        alpha=spec.alpha,
        correction=spec.correction,
        allocation=spec.planned_allocation,
        unit=spec.unit,
    )
    balance = ab.balance(spec, data)
    days, source = ab.days_elapsed(spec, data)
    size = ab.sample_size(spec, result, days, source)
    verdicts = abkit.verdict.decide(
        result,
        primary=spec.primary.name,
        guardrails=spec.margins,
        balance_p=balance.p_value,
        mde=spec.mde,
        power=spec.power,
        days_elapsed=days,
    )
    return spec, result, verdicts, balance, size


@pytest.fixture(scope="module")
def instant():
    return _read("instant_refunds")


@pytest.fixture(scope="module")
def chatbot():
    return _read("chatbot_3arm")


IMPACT = {"volume": 12_000_000, "per": "orders", "unit": "refunds", "value": 4.5}


# --------------------------------------------------------------------------- impact in business terms
def test_the_verdicts_impact_is_volume_times_the_effect_and_its_interval(instant):
    spec, result, verdicts, _, _ = instant
    (arm,) = digest.ab_impacts(with_impact(spec, IMPACT), result, verdicts)
    row = result.row("refund_rate")
    # independent arithmetic: refunds per order x orders a year, each bound alike; money = EUR 4.50 a refund
    change = [12e6 * row["effect"], 12e6 * row["ci_lower"], 12e6 * row["ci_upper"]]
    assert arm.impact.change == pytest.approx(change[0], rel=1e-12)
    assert (arm.impact.lower, arm.impact.upper) == pytest.approx(sorted(change[1:]), rel=1e-12)
    assert arm.impact.level == pytest.approx(0.95)
    (c, lo, hi), _ = round_about([abs(change[0]), abs(change[2]), abs(change[1])])
    words = arm.sentence()
    assert words.startswith(f"about {c:,.0f} fewer refunds a year (95% CI {lo:,.0f} to {hi:,.0f})"), words
    (m, mlo, mhi), _ = round_about([4.5 * abs(change[0]), 4.5 * abs(change[2]), 4.5 * abs(change[1])])
    assert f"saving about EUR {m:,.0f} a year (95% CI EUR {mlo:,.0f} to EUR {mhi:,.0f})" in words, words
    assert words == (
        "about 48,000 fewer refunds a year (95% CI 11,000 to 85,000), saving about EUR 220,000 a year "
        "(95% CI EUR 50,000 to EUR 380,000)"
    )  # the sample's numbers, as a reader sees them
    html = str(digest.impact_html(with_impact(spec, IMPACT), [arm]))
    assert "In business terms</b>, at 12,000,000 orders a year: about 48,000 fewer refunds" in html
    # the five lines carry it too, after the primary effect
    lines = digest.ab_lines(with_impact(spec, IMPACT), result, verdicts)
    assert "; about 48,000 fewer refunds a year" in lines[1]


def test_no_impact_block_no_sentence_and_an_invalid_arm_gets_no_number(instant, chatbot):
    spec, result, verdicts, _, _ = instant
    assert digest.ab_impacts(spec, result, verdicts) == []
    assert str(digest.impact_html(spec, [])) == ""
    assert "a year" not in " ".join(digest.ab_lines(spec, result, verdicts))
    spec3, result3, verdicts3, _, _ = chatbot
    impacts = digest.ab_impacts(with_impact(spec3, {"volume": 1e6, "unit": "contacts"}), result3, verdicts3)
    assert [i.variant for i in impacts] == ["chatbot", "chatbot_plus"]
    assert all(i.impact is None and "Invalid" in i.why for i in impacts)  # SRM: its numbers are not trusted
    html = str(digest.impact_html(with_impact(spec3, {"volume": 1e6, "unit": "contacts"}), impacts))
    assert html.count("<li>") == 2 and "cannot be" in html and "fewer" not in html


def test_impact_words_are_escaped():
    from abkit.business_impact import yearly_impact

    impact = {"volume": 1000, "unit": "<b>contacts</b>", "per": "orders"}
    item = digest.ArmImpact("<arm>", yearly_impact(-0.5, -0.7, -0.3, impact, better="lower"))
    html = str(digest.impact_html(WithImpact(type("S", (), {})(), impact), [item, item]))
    assert "<b>contacts</b>" not in html and "&lt;b&gt;contacts&lt;/b&gt;" in html and "&lt;arm&gt;" in html


def test_a_rollouts_impact_needs_its_baseline_level():
    from abkit.readout.rollout import Effect

    spec = WithImpact(type("S", (), {})(), {"volume": 2_000_000, "per": "orders", "unit": "contacts", "value": 4.5})
    level = Effect(
        outcome="contact_rate",
        better="lower",
        scale="level",
        estimate=-0.011,
        se=0.004,
        ci_lower=-0.019,
        ci_upper=-0.003,
        p_value=0.006,
        bootstrap_p=0.01,
        rel=-0.0917,
        rel_ci_lower=-0.158,
        rel_ci_upper=-0.025,
        baseline=0.12,
        alpha=0.05,
    )
    got = digest.rollout_impact(spec, level)
    assert got.impact.change == pytest.approx(2e6 * 0.12 * -0.0917)
    assert (got.impact.lower, got.impact.upper) == pytest.approx((2e6 * 0.12 * -0.158, 2e6 * 0.12 * -0.025))
    assert got.impact.money == pytest.approx(4.5 * 2e6 * 0.12 * 0.0917)  # fewer contacts: a saving
    log = Effect(**{**level.__dict__, "scale": "log", "baseline": math.nan})
    assert digest.rollout_impact(spec, log).impact is None
    assert "log scale" in digest.rollout_impact(spec, log).why
    assert digest.rollout_impact(type("S", (), {})(), level) is None  # no impact: block, nothing


# --------------------------------------------------------------------------- summary.md
def test_five_lines_of_an_ab_readout(instant):
    spec, result, verdicts, balance, size = instant
    lines = digest.ab_lines(spec, result, verdicts, balance=balance, size=size)
    text = digest.summary_text(lines, "/srv/reports/instant_refunds/readout.html")
    out = text.splitlines()
    assert len(out) == 5 and text.endswith("\n") and all(line.strip() for line in out)
    assert "<" not in text  # plain text, no markup
    verdict = verdicts[0]
    assert out[0] == f"{spec.name}: {verdict.display_label}. {verdict.headline}"
    row = result.row("refund_rate")
    lo, hi = row["rel_ci_lower"], row["rel_ci_upper"]
    assert out[1].startswith("Primary metric refund_rate (treatment vs control): ")
    assert f"{100 * row['rel_effect']:+.1f}% (95% CI {100 * lo:+.1f}% to {100 * hi:+.1f}%)" in out[1]
    assert out[2].startswith("Guardrails: ") and "repeat_purchase_30d" in out[2] and "abuse_loss_per_order" in out[2]
    assert "BREACHED" not in out[2]
    assert out[3].startswith("Health: no sample ratio mismatch") and "pre-period balance fine" in out[3]
    assert f"{size.units:,} units" in out[3]
    assert out[4] == "Full readout: /srv/reports/instant_refunds/readout.html"


def test_five_lines_say_what_is_wrong(chatbot):
    spec, result, verdicts, balance, size = chatbot
    lines = digest.ab_lines(spec, result, verdicts, balance=balance, size=size)
    assert "chatbot: Invalid" in lines[0] and "chatbot_plus: Invalid" in lines[0]
    assert lines[3].startswith("Health: SAMPLE RATIO MISMATCH (p < 0.001)")
    assert "chatbot:" in lines[1] and "chatbot_plus:" in lines[1] and "Holm-adjusted p" in lines[1]
    failed = digest.failed_summary_text("Broken", "DataError: column 'x'\nnot found", "/r/x/error.txt").splitlines()
    assert len(failed) == 5 and failed[0] == "Broken: readout FAILED. No verdict."
    assert failed[1] == "Error: DataError: column 'x' not found" and failed[4] == "Details: /r/x/error.txt"


def test_five_lines_of_a_plan():
    from types import SimpleNamespace as NS

    spec = NS(
        name="Plan",
        primary=NS(name="contact_rate"),
        power=0.8,
        guardrails=(NS(name="repeat_purchase_30d", margin=0.03),),
    )
    rec = NS(label="Run 29 days", headline="Run the test for 29 days.", mde=0.1, days=29, units=31140.0)
    lines = digest.plan_lines(spec, rec)
    assert lines == [
        "Plan: Run 29 days. Run the test for 29 days.",
        (
            "Primary metric contact_rate: the test detects a 10.0% change in contact_rate with 80% power "
            "after 29 days (31,140 units)."
        ),
        "Guardrails: repeat_purchase_30d (margin 3.0%) (powered in the plan).",
        "Health: a plan from history; no test data yet.",
    ]


# --------------------------------------------------------------------------- the spec format's impact: block
def _spec_yaml(tmp_path, impact_line: str, kind_lines: str | None = None) -> Path:
    text = (ROOT / "specs" / "refund_tracker.yaml").read_text(encoding="utf-8")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("impact:"))
    text = text.replace("../data/", str(ROOT / "data") + "/")
    path = tmp_path / "spec.yaml"
    path.write_text(text.replace("alpha: 0.05", "alpha: 0.05\n" + impact_line), encoding="utf-8")
    return path


def test_a_spec_declares_its_impact_and_keeps_it_through_the_dict_form(tmp_path):
    spec = abkit.load_spec(
        _spec_yaml(tmp_path, "impact: {volume: 12_000_000, per: orders, unit: contacts, value: 4.50}")
    )
    assert spec.impact == ImpactSpec(volume=12e6, per="orders", unit="contacts", value=4.5, currency="EUR")
    assert type(spec).from_dict(spec.to_dict()) == spec
    units_only = abkit.load_spec(_spec_yaml(tmp_path, "impact: {volume: 1000, unit: contacts}"))
    assert units_only.impact == ImpactSpec(volume=1000.0, unit="contacts", per="units", value=None)
    assert abkit.load_spec(ROOT / "specs" / "instant_refunds.yaml").impact is None  # optional
    shipped = abkit.load_spec(ROOT / "specs" / "refund_tracker.yaml")  # a sample declares one
    assert shipped.impact is not None and shipped.impact.unit == "contacts"


@pytest.mark.parametrize(
    ("line", "where", "words"),
    [
        ("impact: {volum: 1000, unit: contacts}", "impact.volum", "Did you mean 'volume'?"),
        ("impact: {volume: 1000, unit: contacts, curency: GBP}", "impact.curency", "Did you mean 'currency'?"),
        ("impact: {volume: -5, unit: contacts}", "impact.volume", "above 0"),
        ("impact: {volume: .inf, unit: contacts}", "impact.volume", "above 0"),
        ("impact: {volume: '12M', unit: contacts}", "impact.volume", "text"),
        ("impact: {volume: 1000}", "impact.unit", "unit: contacts"),
        ("impact: {unit: contacts}", "impact.volume", "volume: 12000000"),
        ("impact: {volume: 1000, unit: contacts, value: 0}", "impact.value", "above 0"),
        ("impact: 12000000", "impact", "volume"),
        ("impcat: {volume: 1000, unit: contacts}", "impcat", "Did you mean 'impact'?"),
    ],
)
def test_a_wrong_impact_block_is_refused_with_the_key_and_the_fix(tmp_path, line, where, words):
    with pytest.raises(abkit.SpecError) as err:
        abkit.load_spec(_spec_yaml(tmp_path, line))
    message = str(err.value)
    assert f"{where}:" in message and words in message, message


def test_the_json_schema_describes_impact_for_ab_rollout_and_one_market_specs_only():
    jsonschema = pytest.importorskip("jsonschema")

    schema = abkit.spec.spec_json_schema()
    defs = schema["$defs"]
    assert set(defs["ImpactDocument"]["properties"]) == {"volume", "per", "unit", "value", "currency"}
    assert set(defs["ImpactDocument"]["required"]) == {"volume", "unit"}
    assert all("impact" in defs[d]["properties"] for d in ("AbDocument", "RolloutDocument", "SyntheticDocument"))
    assert "impact" not in defs["PowerDocument"]["properties"]  # a plan has no effect to turn into units
    validator = jsonschema.Draft7Validator(schema)
    doc = {"name": "x", "data": "d.parquet", "metrics": [{"name": "m", "type": "mean", "column": "c", "primary": True}]}
    assert not list(validator.iter_errors({**doc, "impact": {"volume": 1e6, "unit": "contacts"}}))
    assert list(validator.iter_errors({**doc, "impact": {"volum": 1e6, "unit": "contacts"}}))
