"""The whole pipeline under LocalDagRunner on a small generated dataset.

One pipeline root and ML Metadata store serve every run, as they would for a
user: later runs reuse the cached upstream components, and the Evaluator
compares against the model the first run pushed.
"""

import base64
import dataclasses
import glob
import io
import json
import os
import re
import shutil

from PIL import Image
import pytest
import tensorflow as tf

from contracts import names
import local_runner
import report
from bench import synthetic_busi
from contracts import configs
from contracts import serving
from serving import model_card
from serving import serving_config
from serving import serving_dir
from serving import serving_ops
from run_report import build as report_build
from tests import headless_browser

_FAST = ['--image-size', '32', '--epochs', '2', '--beam-workers', '1']


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
  root = tmp_path_factory.mktemp('e2e')
  data = synthetic_busi.write_dataset(str(root / 'data'), per_class=10)
  return {'data': data, 'out': str(root / 'out')}


def _run(workspace, *flags, data=None):
  return local_runner.main(['--data-root', data or workspace['data'],
                            '--output-dir', workspace['out'], *_FAST, *flags])


def _model_base(workspace):
  return os.path.join(workspace['out'], 'serving_model', 'busi_classifier')


def test_first_run_pushes_a_servable_model(workspace, capsys):
  assert _run(workspace, '--min-accuracy', '0', '--min-malignant-recall', '0') == 0
  printed = capsys.readouterr().out
  assert 'Blessed: yes' in printed
  assert 'malignant_sensitivity' in printed
  versions = serving_dir.served_versions(_model_base(workspace))
  assert len(versions) == 1
  model = tf.saved_model.load(os.path.join(_model_base(workspace), str(versions[0])))
  image = open(os.path.join(workspace['data'], 'benign', 'benign (1).png'), 'rb').read()
  scores = model.signatures['serving_images'](image_bytes=tf.constant([image]))['scores']
  assert scores.shape == (1, 3)
  assert abs(float(tf.reduce_sum(scores)) - 1.0) < 1e-5


def test_the_push_carries_a_model_card_and_tf_serving_config(workspace):
  """The card of the first push records what the run measured and was compared with."""
  base = _model_base(workspace)
  (version,) = serving_dir.served_versions(base)
  card = model_card.read_card(os.path.join(base, str(version)))
  assert card.version == version and card.model_name == names.MODEL_NAME
  assert card.run_id and card.baseline_version == ''
  assert card.data.fingerprint.startswith('image folder ')
  assert sum(card.data.class_counts.values()) == sum(
      n for split in card.data.split_counts.values() for n in split.values())
  assert set(card.data.split_counts) == {'train', 'eval', 'test'}
  assert card.test_split == 'test' and card.floors == {
      'accuracy': 0.0, 'malignant_sensitivity': 0.0}
  assert set(card.headline()) == {'accuracy', 'malignant_sensitivity'}
  assert 0.0 <= card.test_metrics['accuracy'] <= 1.0
  assert card.test_metrics['example_count'] == sum(card.data.split_counts['test'].values())
  assert card.training_config['training']['epochs'] == 2
  assert card.code_fingerprint == model_card.code_fingerprint()
  with open(os.path.join(base, str(version), serving.ASSETS_EXTRA,
                         serving.MODEL_CARD_MARKDOWN_FILE)) as f:
    assert f'# busi_classifier, version {version}' in f.read()
  assert os.path.isfile(os.path.join(base, str(version), serving.ASSETS_EXTRA,
                                     serving.WARMUP_FILE))
  assert serving_config.read_served_versions(base) == serving_config.ServedVersions(version)
  (change,) = serving_ops.read_log(base)
  assert (change.action, change.stable, change.previous_stable) == ('push', version, None)


def _reports(workspace):
  return sorted(glob.glob(os.path.join(workspace['out'], report_build.REPORTS_DIR, '*.html')))


def test_first_run_report_has_every_section_and_renders_offline(workspace, tmp_path):
  reports = _reports(workspace)
  assert len(reports) == 1
  page = open(reports[0], encoding='utf-8').read()
  workspace['first_run'] = re.search(r'<title>BUSI pipeline run (.+?)</title>', page).group(1)
  for section in report_build.SECTIONS:
    assert f'<section id="{section}">' in page
  assert 'Blessed: <span class="pass">yes</span>' in page
  assert re.search(r'Pointing game: <strong>[01]\.\d\d \(\d+ of \d+ ', page)
  pngs = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
  assert len(pngs) == 8  # counts, distributions, training, 4 evaluation, Grad-CAM
  for png in pngs:
    Image.open(io.BytesIO(base64.b64decode(png))).load()
  assert not re.search(r'(?:src|href)\s*=\s*["\']?(?:[a-z]+:)?//|<script|@import|url\(',
                       page, re.IGNORECASE)
  screenshot = str(tmp_path / 'report.png')
  assert headless_browser.screenshot(reports[0], screenshot) == []
  darkest, lightest = Image.open(screenshot).convert('L').getextrema()
  assert darkest < 64 and lightest > 192  # text on a page, not a blank render


def test_examples_keep_near_duplicates_in_one_split_and_report_them(workspace):
  audits = tf.io.gfile.glob(os.path.join(
      workspace['out'], 'tfx', 'ImageExampleGen', 'examples', '*',
      names.DATA_AUDIT_FILE))
  audit = json.loads(open(audits[0]).read())
  assert audit['ingested'] == 30
  assert sum(sum(c.values()) for c in audit['split_counts'].values()) == 30
  assert set(audit['split_counts']) == {'train', 'eval', 'test'}


def test_unreachable_thresholds_push_nothing(workspace, capsys):
  before = serving_dir.served_versions(_model_base(workspace))
  assert _run(workspace, '--min-accuracy', '1.0') == 0
  printed = capsys.readouterr().out
  assert 'Blessed: no' in printed
  assert 'accuracy' in printed.split('Failed checks:')[1]
  assert f'baseline: served version {before[-1]}' in printed
  assert serving_dir.served_versions(_model_base(workspace)) == before


def test_report_command_rebuilds_a_past_run(workspace, capsys):
  newest = _reports(workspace)
  assert len(newest) == 2
  first = report_build.report_path(workspace['out'], workspace['first_run'])
  os.remove(first)
  assert report.main(['--output-dir', workspace['out'],
                      '--run-id', workspace['first_run']]) == 0
  assert capsys.readouterr().out.strip() == first
  pages = {path: open(path, encoding='utf-8').read() for path in newest}
  assert 'Blessed: <span class="pass">yes</span>' in pages.pop(first)
  (second,) = pages.values()
  assert 'Blessed: <span class="fail">no</span>' in second
  assert '<span class="fail">fail</span>' in second  # the unreachable accuracy floor
  assert 'Baseline (served version' in second
  assert '<h3>TFDV statistics</h3>' in second  # cached upstream outputs are found
  assert report.main(['--output-dir', workspace['out'], '--run-id', 'no-such-run']) == 2
  assert "No run 'no-such-run'" in capsys.readouterr().err


def test_unknown_class_folder_over_the_quarantine_limit_stops_the_run(
    workspace, tmp_path, capsys):
  data = str(tmp_path / 'data')
  shutil.copytree(workspace['data'], data)
  synthetic_busi.write_dataset(data, per_class=4, classes=('cyst',))
  before = serving_dir.served_versions(_model_base(workspace))
  assert _run(workspace, '--min-accuracy', '0', '--min-malignant-recall', '0',
              data=data) == 1
  message = capsys.readouterr().err
  assert 'Stopped at the data audit: 4 of 34 files quarantined' in message
  assert "cyst/cyst (1).png: unknown class folder 'cyst'" in message
  assert serving_dir.served_versions(_model_base(workspace)) == before


def test_data_outside_the_schema_stops_at_validation(workspace, tmp_path, capsys):
  # A site schema whose label domain lacks 'normal', while the data has it:
  # ExampleValidator flags the label and the gate stops before Transform.
  schema = tmp_path / 'schema.pbtxt'
  with open(configs.PipelineConfig(pipeline_root='', serving_dir='').schema_file) as f:
    schema.write_text(f.read().replace('  value: "normal"\n', ''))
  args = local_runner.parse_args(['--output-dir', workspace['out'], *_FAST])
  config = dataclasses.replace(local_runner.build_config(args, workspace['data']),
                               schema_file=str(schema))
  before = serving_dir.served_versions(_model_base(workspace))
  assert local_runner.run(config) == 1
  message = capsys.readouterr().err
  assert 'Stopped at data validation' in message
  assert "feature 'label'" in message and 'normal' in message
  assert serving_dir.served_versions(_model_base(workspace)) == before
