"""The report's drift section: the two distributions of each drifted feature, on screen."""

import re

from PIL import Image

from components import drift_check
from run_report import drift
from run_report import html
from tests import headless_browser

_BRIGHTER = drift_check.FeatureDrift(
    feature='intensity_mean', comparator='Jensen-Shannon', value=1.0, threshold=0.2,
    served={'mean': 111.0, 'std': 10.3, 'min': 93.0, 'median': 110.0, 'max': 129.0},
    new={'mean': 179.0, 'std': 8.3, 'min': 164.0, 'median': 179.0, 'max': 191.0},
    site='busi',
    served_histogram=[[93 + 3.6 * i, 96.6 + 3.6 * i, s] for i, s in enumerate(
        (0.05, 0.1, 0.15, 0.2, 0.2, 0.1, 0.1, 0.05, 0.03, 0.02))],
    new_histogram=[[164 + 2.7 * i, 166.7 + 2.7 * i, s] for i, s in enumerate(
        (0.02, 0.08, 0.1, 0.2, 0.25, 0.15, 0.1, 0.05, 0.03, 0.02))])
_DEVICE = drift_check.FeatureDrift(
    feature='device', comparator='L-infinity', value=0.134, threshold=0.1,
    served={'GE Logiq 7': 1.0}, new={'GE Logiq 7': 0.866, 'Toshiba Aplio 300': 0.134})
_RESULT = drift_check.DriftResult(
    policy='warn', served_version='7', new_sites={'other': 9},
    features=[_BRIGHTER, _DEVICE, drift_check.FeatureDrift(
        'label', 'L-infinity', 0.01, 0.1, {'benign': 0.6}, {'benign': 0.59})])


def _page(parts) -> str:
  page = html.Page('drift')
  page.section('drift', 'Drift', parts)
  return page.render()


def test_each_drift_is_named_and_drawn_twice_on_one_scale():
  page = _page(drift.section_parts(_RESULT))
  assert 'site other: new site, not in the data of served version 7 (9 images' in page
  assert '<h4>busi: intensity_mean: Jensen-Shannon 1.000 &gt; 0.2</h4>' in page
  assert '<h4>device: L-infinity 0.134 &gt; 0.1</h4>' in page
  assert '<h4>label' not in page  # compared (in the table), not drifted
  figure = page.split('<h4>busi: intensity_mean')[1].split('</figure>')[0]
  assert figure.count(f'fill="{drift.SERVED_COLOUR}"') == 10
  assert figure.count(f'fill="{drift.NEW_COLOUR}"') == 10
  assert 'both panels share the scales (93 to 191' in figure
  assert '<script' not in page
  shares = page.split('<h4>device')[1].split('</table>')[0]
  assert re.search(r'<td>Toshiba Aplio 300</td><td><svg [^>]*aria-label="0\.0%"', shares)
  assert 'aria-label="13.4%"' in shares


def test_nothing_served_is_one_line():
  unchecked = drift_check.DriftResult('warn', '', [], 'no model with a model card is '
                                      'served yet')
  assert drift.section_parts(unchecked) == [
      '<pre>Drift: not checked (no model with a model card is served yet).</pre>']


def test_the_drift_section_fits_a_laptop_screen_and_shows_both_colours(tmp_path):
  page = tmp_path / 'drift.html'
  page.write_text(_page(drift.section_parts(_RESULT)), encoding='utf-8')
  screenshot = str(tmp_path / 'drift.png')
  assert headless_browser.screenshot(str(page), screenshot, width=1366, height=1400) == []
  image = Image.open(screenshot).convert('RGB')
  darkest, _ = image.convert('L').crop(
      (image.width - 100, 0, image.width, image.height)).getextrema()
  assert darkest > 240  # nothing past the 1100 px column
  colours = {colour for _, colour in image.getcolors(maxcolors=1 << 20)}
  for hex_colour in (drift.SERVED_COLOUR, drift.NEW_COLOUR):
    assert tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)) in colours
