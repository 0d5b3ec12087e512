"""MetricHistory buffers and smoothing (no Qt)."""

import csv
import math

import numpy as np
import pytest

from workbench.panels.metric_history import EmaCache, MetricHistory, MetricSeries, smooth


def test_series_grows_past_its_capacity_and_keeps_values():
    s = MetricSeries(capacity=16)
    for i in range(1000):
        s.append(i / 10, i * 2.0)
    assert len(s) == 1000
    np.testing.assert_allclose(s.x[:3], [0.0, 0.1, 0.2])
    np.testing.assert_allclose(s.y[-1], 1998.0)
    s.extend([200.0, 201.0], [None, 5.0])
    assert len(s) == 1002 and math.isnan(s.y[-2]) and s.y[-1] == 5.0


def test_smooth_matches_a_direct_debiased_ema():
    rng = np.random.default_rng(1)
    y = rng.normal(size=500)
    w = 0.8
    ema, expected = 0.0, []
    for i, v in enumerate(y, start=1):
        ema = w * ema + (1 - w) * v
        expected.append(ema / (1 - w**i))
    np.testing.assert_allclose(smooth(y, w), expected, rtol=1e-12)
    np.testing.assert_array_equal(smooth(y, 0.0), y)


def test_smooth_skips_nan_and_refuses_bad_weights():
    out = smooth(np.array([1.0, np.nan, 3.0]), 0.5)
    assert out[1] == 1.0 and np.isfinite(out).all()
    with pytest.raises(ValueError, match="weight"):
        smooth(np.zeros(3), 1.0)


def test_ema_cache_extends_incrementally_and_resets_on_new_data():
    y = np.arange(100, dtype=float)
    cache = EmaCache()
    first = cache.update(y[:60], 0.9).copy()
    full = cache.update(y, 0.9)
    np.testing.assert_allclose(full[:60], first)
    np.testing.assert_allclose(full, smooth(y, 0.9))
    replaced = -y
    np.testing.assert_allclose(cache.update(replaced, 0.9, generation=1), smooth(replaced, 0.9))


def test_history_versions_and_csv(tmp_path):
    h = MetricHistory()
    v0 = h.version
    h.append("batch_loss", 0.5, 2.0)
    h.append("val_accuracy", 1.0, None)
    assert h.version == v0 + 2
    assert h.names() == ["batch_loss", "val_accuracy"]
    rows = h.write_csv(tmp_path / "m.csv")
    with open(tmp_path / "m.csv") as f:
        table = list(csv.reader(f))
    assert rows == 2 and table[0] == ["series", "epoch", "value"]
    assert table[1] == ["batch_loss", "0.5", "2"] and table[2] == ["val_accuracy", "1", ""]
    h.clear()
    assert len(h) == 0 and h.series("batch_loss").generation == 1
