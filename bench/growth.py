"""How a cost grows with the number of images, and the scale targets."""

from typing import Dict, Sequence

import numpy as np

# The targets at the largest size, against 1x: the cost per image grows by at
# most a quarter, the peak memory by at most half.
MAX_TIME_PER_IMAGE_CHANGE = 0.25
MAX_PEAK_RSS_RATIO = 1.5


def fit(images: Sequence[int], seconds: Sequence[float],
        peak_rss: Sequence[float]) -> Dict[str, float]:
  """Least-squares seconds = fixed + per_image * n, and log-log growth exponents."""
  n = np.asarray(images, dtype=np.float64)
  per_image, fixed = np.polyfit(n, np.asarray(seconds, dtype=np.float64), 1)
  return {
      'fixed_seconds': round(float(fixed), 1),
      'marginal_ms_per_image': round(1000 * float(per_image), 2),
      'time_exponent': round(float(np.polyfit(np.log(n), np.log(seconds), 1)[0]), 3),
      'peak_rss_exponent': round(float(np.polyfit(np.log(n), np.log(peak_rss), 1)[0]), 3),
  }


def targets(runs: Sequence[Dict[str, object]],
            per_image_key: str = 'ms_per_image') -> Dict[str, object]:
  """The scale targets, largest size against the smallest (1x when run).

  `per_image_key` names the per-image cost to compare, wall or CPU time.
  """
  base, top = runs[0], runs[-1]
  change = top[per_image_key] / base[per_image_key] - 1
  rss_ratio = top['peak_rss_mib'] / base['peak_rss_mib']
  return {'compared': f'{top["size"]}x against {base["size"]}x',
          'time_per_image_change': round(change, 3),
          'time_per_image_within_25pct': abs(change) <= MAX_TIME_PER_IMAGE_CHANGE,
          'peak_rss_ratio': round(rss_ratio, 2),
          'peak_rss_within_1_5x': rss_ratio <= MAX_PEAK_RSS_RATIO}
