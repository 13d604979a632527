"""The report's data audit and configuration render as tables a person reads.

The audit comes from a real folder scan of generated scans with one label
conflict (the same scan filed as benign and malignant) and one file that is no
image, through the same functions ImageExampleGen calls.
"""

import os
import re
import shutil

import numpy as np
from PIL import Image
import pytest

from blessing import site_gate
from contracts import configs
from dataset import data_audit
from dataset import image_files
from dataset import split_plan
from observability import run_summary
from run_report import build
from run_report import html
from tests import headless_browser
from tests.fixtures import synthetic_busi

_CONFLICT = ('benign/benign (1).png', 'malignant/malignant (9).png')


@pytest.fixture(scope='module')
def audit(tmp_path_factory) -> data_audit.DataAudit:
  root = synthetic_busi.write_dataset(str(tmp_path_factory.mktemp('audit') / 'data'),
                                      per_class=8)
  shutil.copy(os.path.join(root, _CONFLICT[0]), os.path.join(root, _CONFLICT[1]))
  with open(os.path.join(root, 'normal', 'normal (9).png'), 'wb') as f:
    f.write(b'not a png')
  data = configs.DataConfig()
  scan = image_files.scan_folder(root, data.class_names)
  fingerprints, unreadable = [], []
  for image in scan.images:
    try:
      fingerprints.append(image_files.fingerprint(root, image))
    except image_files.InvalidImageError as e:
      unreadable.append(image_files.ExcludedFile(image.relpath, e.reason))
  plan = split_plan.plan_splits(fingerprints, data.splits.as_dict(),
                                data.near_duplicate_max_bits, data.split_seed,
                                data.label_conflicts)
  return data_audit.build(
      data_root=root,
      policy=data_audit.DataPolicy(data.class_names, list(data.splits.as_dict())),
      near_duplicate_max_bits=data.near_duplicate_max_bits, assignment=plan.splits(),
      labels=plan.labels, groups=plan.groups,
      quarantined=[*scan.quarantined, *unreadable, *plan.dropped], ignored=scan.ignored, notes=[])


def _page(parts) -> str:
  page = html.Page('audit')
  page.section('data', 'Data', parts)
  return page.render()


def test_audit_is_tables_with_previews_not_json(audit):
  page = _page(build._audit_parts(audit))  # pylint: disable=protected-access
  assert '<pre>' not in page and '{&quot;' not in page and '{"' not in page
  assert re.search(r'<tr><td>benign</td><td class="num">\d+</td>', page)  # class x split
  assert '<h4>Label conflicts (1)</h4>' in page
  assert 'benign/benign (1).png (benign), malignant/malignant (9).png (malignant)' in page
  quarantined = page.split('<h4>Quarantined files (3)</h4>')[1].split('</table>')[0]
  # The conflict's two copies have previews; the file that is no image has none.
  assert quarantined.count('class="thumb"') == 2
  assert '<td>-</td><td>normal/normal (9).png</td>' in quarantined
  conflicts = page.split('<h4>Label conflicts (1)</h4>')[1].split('</table>')[0]
  assert conflicts.count('class="thumb"') == 2


def test_configuration_is_one_row_per_setting():
  rows = list(build._setting_rows(  # pylint: disable=protected-access
      'model', {'name': 'lesion_net', 'image_size': 256, 'splits': [70, 15, 15],
                'nested': {'a': 1}}))
  assert rows == [('model.image_size', 256), ('model.name', 'lesion_net'),
                  ('model.nested.a', 1), ('model.splits', '70, 15, 15')]
  assert build._parsed('{"epochs": 2}') == {'epochs': 2}  # pylint: disable=protected-access
  assert build._parsed('test') == 'test'  # pylint: disable=protected-access


def test_audit_fits_a_laptop_screen(audit, tmp_path):
  """At 1366 px nothing reaches past the page's column into the right margin."""
  page = tmp_path / 'audit.html'
  page.write_text(_page(build._audit_parts(audit)), encoding='utf-8')  # pylint: disable=protected-access
  screenshot = str(tmp_path / 'audit.png')
  assert headless_browser.screenshot(str(page), screenshot, width=1366, height=1600) == []
  image = Image.open(screenshot).convert('L')
  darkest, _ = image.crop((image.width - 100, 0, image.width, image.height)).getextrema()
  assert darkest > 240  # the margin right of the 1100 px column stays blank


def _site(name: str, gated: bool, failures=()) -> site_gate.SiteVerdict:
  metrics = {metric: 0.8125 for metric in site_gate.SITE_TABLE_METRICS}
  metrics.update({name_: 64.0 for name_ in site_gate.COUNT_METRICS})
  return site_gate.SiteVerdict(site=name, malignant_examples=64, gated=gated,
                               metrics=metrics, baseline={}, failures=tuple(failures))


def test_per_site_table_fits_a_laptop_screen_without_breaking_words(tmp_path):
  """Headers wrap between words only, and the table stays inside the column."""
  sites = site_gate.SiteGateResult(
      min_site_malignant_examples=20, min_malignant_recall=0.8, regression_tolerance=0.02,
      sites=(_site('busi', True), _site('bus_bra_toshiba_aplio_300', True, ['below']),
             _site('a_small_site', False)))
  summary = run_summary.RunSummary(run_id='r', components=[], metrics={}, blessed=True,
                                   failed_checks=[], baseline_version=None, pushed_path=None,
                                   sites=sites)
  parts = build._site_parts(summary)  # pylint: disable=protected-access
  assert '<th>malignant sensitivity</th>' in ''.join(parts)
  page = tmp_path / 'sites.html'
  page.write_text(_page(parts), encoding='utf-8')
  assert 'th { background: #f6f8fa; overflow-wrap: normal; }' in page.read_text()
  screenshot = str(tmp_path / 'sites.png')
  assert headless_browser.screenshot(str(page), screenshot, width=1366, height=900) == []
  image = Image.open(screenshot).convert('L')
  darkest, _ = image.crop((image.width - 100, 0, image.width, image.height)).getextrema()
  assert darkest > 240  # the margin right of the 1100 px column stays blank


def test_the_radiologist_section_shows_birads_points_beside_the_model():
  names = ('benign', 'malignant', 'normal')
  labels = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 2])
  malignant = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.25, 0.45, 0.6, 0.9, 0.0])
  scores = np.stack([1 - malignant, malignant, np.zeros(10)], axis=1)
  scores[9] = (0, 0, 1)
  birads = np.array([2, 3, 3, 4, 4, 3, 4, 5, 5, np.nan])
  page = _page(build._radiologist_parts(birads, labels, scores, names))  # pylint: disable=protected-access
  assert 'same 9 benign and malignant test scans' in page and 'BI-RADS AUC 0.800' in page
  assert 'model, at BI-RADS &gt;= 4' in page
  assert '0.750 (3/4;' in page
  assert build._radiologist_parts(np.full(10, np.nan), labels, scores, names) == []  # pylint: disable=protected-access
