"""Tests for bench/growth.py."""

import pytest

from bench import growth


def test_linear_time_and_flat_memory_fit_exactly():
  images = [780, 1560, 7800]
  seconds = [30 + 0.05 * n for n in images]  # 30 s fixed, 50 ms per image
  fitted = growth.fit(images, seconds, [900.0, 900.0, 900.0])
  assert fitted['fixed_seconds'] == pytest.approx(30, abs=0.1)
  assert fitted['marginal_ms_per_image'] == pytest.approx(50, abs=0.01)
  assert fitted['peak_rss_exponent'] == pytest.approx(0, abs=1e-6)
  assert 0 < fitted['time_exponent'] < 1  # the fixed cost makes growth sub-linear


def test_quadratic_time_has_exponent_two():
  images = [100, 200, 400]
  fitted = growth.fit(images, [n * n * 1e-3 for n in images], [1.0, 2.0, 4.0])
  assert fitted['time_exponent'] == pytest.approx(2, abs=1e-6)
  assert fitted['peak_rss_exponent'] == pytest.approx(1, abs=1e-6)


def test_targets_compare_the_largest_size_with_the_smallest():
  runs = [{'size': 1, 'ms_per_image': 100.0, 'peak_rss_mib': 1000.0},
          {'size': 3, 'ms_per_image': 80.0, 'peak_rss_mib': 1400.0},
          {'size': 10, 'ms_per_image': 70.0, 'peak_rss_mib': 1600.0}]
  assert growth.targets(runs) == {
      'compared': '10x against 1x', 'time_per_image_change': -0.3,
      'time_per_image_within_25pct': False, 'peak_rss_ratio': 1.6,
      'peak_rss_within_1_5x': False}
