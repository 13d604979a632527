"""The report's drift section: each drifted feature's two distributions side by side.

DataDriftCheck (components/drift_check.py) keeps, for every compared feature,
the served model's data and the new data as TFDV summarised them: the share of
each value of a categorical feature, the standard histogram of a numeric one.
A reader judges a drift by eye faster than by its distance, so each drifted
feature is drawn twice on one scale: served data on the left, new data on
the right. Plain HTML and inline SVG, no script, as the rest of the page.
"""

from typing import List, Sequence

from components import drift_check
from run_report import html

SERVED_COLOUR = '#57606a'
NEW_COLOUR = '#cf6a22'
_PANEL_W, _PANEL_H, _GAP, _AXIS = 300, 120, 40, 18


def section_parts(result: drift_check.DriftResult) -> List[str]:
  """The headline, a table of every comparison, and one figure per drift."""
  parts = [html.preformatted('\n'.join(result.summary_lines()))]
  if not result.served_version:
    return parts
  if result.new_sites:
    parts.append(html.table(
        ['New site', 'Images in the train split'], list(result.new_sites.items()),
        caption=f'Sites the data of served version {result.served_version} did not have: '
                'drift in themselves.'))
  parts.append(html.table(
      ['Site', 'Feature', 'Comparator', 'Distance', 'Threshold', 'Drifted'],
      [(f.site or 'all', f.feature, f.comparator, f.value, f.threshold,
        html.badge(not f.drifted, 'no', 'yes'))
       for f in sorted(result.features, key=lambda f: (f.site, f.feature))],
      caption='Every comparison: the whole data, and each site when the run has several.'))
  for feature in result.drifted:
    title = f'{feature.site + ": " if feature.site else ""}{feature.feature}'
    parts.append(f'<h4>{html.text(title)}: {html.text(feature.comparator)} '
                 f'{feature.value:.3f} &gt; {feature.threshold:g}</h4>')
    parts.append(_histograms(feature) if feature.served_histogram or feature.new_histogram
                 else _shares(feature))
  return parts


def _shares(feature: drift_check.FeatureDrift) -> str:
  """A categorical feature: one row per value, its share in each data set as a bar."""
  values = sorted(set(feature.served) | set(feature.new),
                  key=lambda v: -max(feature.served.get(v, 0), feature.new.get(v, 0)))
  rows = [(v or '(empty)', _bar(feature.served.get(v, 0.0), SERVED_COLOUR),
           _bar(feature.new.get(v, 0.0), NEW_COLOUR)) for v in values]
  return html.table(['Value', 'Served data (share)', 'New data (share)'], rows)


def _bar(share: float, colour: str) -> html.Raw:
  width = round(160 * max(0.0, min(1.0, share)))
  return html.Raw(
      f'<svg width="210" height="14" role="img" aria-label="{share:.1%}">'
      f'<rect x="0" y="1" width="{width}" height="12" fill="{colour}"/>'
      f'<text x="{width + 4}" y="11" font-size="11">{share:.1%}</text></svg>')


def _histograms(feature: drift_check.FeatureDrift) -> str:
  """A numeric feature: both histograms as bar charts on one x and one y scale."""
  buckets = [*feature.served_histogram, *feature.new_histogram]
  low = min(b[0] for b in buckets)
  high = max(b[1] for b in buckets)
  top = max((b[2] for b in buckets), default=0.0) or 1.0
  width = 2 * _PANEL_W + _GAP
  panels = [_panel(feature.served_histogram, 0, low, high, top, SERVED_COLOUR,
                   'served model\'s data'),
            _panel(feature.new_histogram, _PANEL_W + _GAP, low, high, top, NEW_COLOUR,
                   'new data')]
  return (f'<figure><svg width="{width}" height="{_PANEL_H + 2 * _AXIS}" role="img" '
          f'aria-label="{html.text(feature.feature)}: served and new histograms">'
          + ''.join(panels) + '</svg>'
          f'<figcaption>{html.text(feature.feature)}: share of images per bucket of '
          f'TFDV\'s histogram; both panels share the scales '
          f'({low:.3g} to {high:.3g}, up to {top:.0%}).</figcaption></figure>'
          f'<p class="note"><span style="color:{SERVED_COLOUR}">&#9632;</span> served '
          f'model\'s data &nbsp; <span style="color:{NEW_COLOUR}">&#9632;</span> new data</p>')


def _panel(buckets: Sequence[Sequence[float]], left: float, low: float, high: float,
           top: float, colour: str, label: str) -> str:
  span = (high - low) or 1.0
  bars = []
  for bucket_low, bucket_high, share in buckets:
    x = left + _PANEL_W * (bucket_low - low) / span
    w = max(1.0, _PANEL_W * (bucket_high - bucket_low) / span)
    h = _PANEL_H * share / top
    bars.append(f'<rect x="{x:.1f}" y="{_AXIS + _PANEL_H - h:.1f}" width="{w:.1f}" '
                f'height="{h:.1f}" fill="{colour}"/>')
  baseline = _AXIS + _PANEL_H
  return (f'<text x="{left}" y="12" font-size="12">{html.text(label)}</text>'
          f'<line x1="{left}" y1="{baseline}" x2="{left + _PANEL_W}" y2="{baseline}" '
          'stroke="#1d1d1f"/>' + ''.join(bars)
          + f'<text x="{left}" y="{baseline + 14}" font-size="11">{low:.3g}</text>'
          f'<text x="{left + _PANEL_W}" y="{baseline + 14}" font-size="11" '
          f'text-anchor="end">{high:.3g}</text>')
