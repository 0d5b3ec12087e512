"""The decathlon score S: the formula, the published rows, generic baselines, refusals."""

import pytest

from core.evaluation.score import (
    DECATHLON_KEYS,
    PUBLISHED_BASELINE,
    PUBLISHED_ROWS,
    SHORT_NAMES,
    canonical_domain,
    decathlon_score,
)

# The published accuracies are rounded to 2 decimals; recomputed S differs from the
# published S by 0.0 / 1.4 / 1.0 / 1.0 / 0.0 points (Feature extractor is the worst).
PUBLISHED_TOLERANCE = 2.0


@pytest.mark.parametrize("row", PUBLISHED_ROWS, ids=lambda r: r.method)
def test_published_rows_recompute_within_rounding(row):
    result = decathlon_score(row.accuracies)
    assert abs(result.total - row.score) <= PUBLISHED_TOLERANCE, (row.method, result.total)
    assert set(result.points) == set(DECATHLON_KEYS)
    assert result.max_total == 10_000


def test_baseline_scores_exactly_2500_and_fixed_points():
    assert decathlon_score(PUBLISHED_BASELINE).total == pytest.approx(2500.0, abs=1e-9)
    base = {"a": 80.0, "b": 50.0}
    # zero error -> 1000; baseline error -> 250; twice the error -> 0; worse -> 0 (clamped).
    assert decathlon_score({"a": 100.0, "b": 50.0}, base).points["a"] == pytest.approx(1000)
    assert decathlon_score({"a": 60.0, "b": 0.0}, base).points["a"] == pytest.approx(0.0)
    assert decathlon_score({"a": 60.0, "b": 0.0}, base).points["b"] == pytest.approx(0.0)
    assert decathlon_score({"a": 10.0, "b": 50.0}, base).points["a"] == 0.0
    # halfway between E_max and 0: E = 0.2 with E_max = 0.4 -> 1000 * 0.25.
    assert decathlon_score({"a": 80.0, "b": 75.0}, base).points["b"] == pytest.approx(562.5)


def test_fractions_and_percent_agree():
    row = PUBLISHED_ROWS[-1]
    as_fraction = {k: v / 100 for k, v in row.accuracies.items()}
    base_fraction = {k: v / 100 for k, v in PUBLISHED_BASELINE.items()}
    a = decathlon_score(as_fraction, base_fraction, percent=False).total
    assert a == pytest.approx(decathlon_score(row.accuracies).total)


def test_short_names_are_accepted():
    row = PUBLISHED_ROWS[2]
    by_short = {short: row.accuracies[key] for short, key in SHORT_NAMES.items()}
    assert decathlon_score(by_short).total == pytest.approx(decathlon_score(row.accuracies).total)
    assert canonical_domain("Flwr") == "vgg-flowers"
    assert canonical_domain("digits_street") == "digits_street"


def test_generic_baseline_of_mini_decathlon():
    baseline = {"digits_street": 90.0, "digits_hand": 95.0, "shapes": 70.0}
    result = decathlon_score({"digits_street": 90.0, "digits_hand": 97.5, "shapes": 40.0}, baseline)
    assert list(result.points) == list(baseline)
    assert result.points["digits_street"] == pytest.approx(250.0)
    # E = 0.025, E_max = 0.1 -> 1000 * 0.075^2 / 0.01 = 562.5
    assert result.points["digits_hand"] == pytest.approx(562.5)
    assert result.points["shapes"] == pytest.approx(1000 * (0.6 - 0.6) ** 2 / 0.36)
    assert result.total == pytest.approx(812.5)
    assert result.max_total == 3000
    assert "812.5" in result.to_markdown()


def test_refusals_name_the_problem():
    with pytest.raises(ValueError, match=r"missing=\['svhn'\]"):
        decathlon_score({k: 50.0 for k in DECATHLON_KEYS if k != "svhn"})
    with pytest.raises(ValueError, match="not in baseline"):
        decathlon_score({"a": 50.0, "zzz": 1.0}, {"a": 60.0})
    with pytest.raises(ValueError, match="given twice"):
        decathlon_score({"Airc": 50.0, "aircraft": 50.0}, {"aircraft": 60.0})
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        decathlon_score({"a": 55.0}, {"a": 0.6}, percent=False)
    with pytest.raises(ValueError, match="no error"):
        decathlon_score({"a": 100.0}, {"a": 100.0})
    # A floor on the baseline error makes a perfect baseline usable: E_max = 2 x 0.01.
    floored = decathlon_score(
        {"a": 99.0, "b": 100.0}, {"a": 100.0, "b": 100.0}, min_baseline_error=0.01
    )
    assert floored.points == {"a": pytest.approx(250.0), "b": pytest.approx(1000.0)}
    with pytest.raises(ValueError, match="names no domain"):
        decathlon_score({}, {})
