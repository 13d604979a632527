"""The whole pipeline under LocalDagRunner on a small generated dataset.

One pipeline root and ML Metadata store serve every run, as they would for a
user: later runs reuse the cached upstream components, and the Evaluator
compares against the model the first run pushed. The two runs the tests read
are module fixtures, built once whatever test asks first; the runs that stop
belong to their own tests and leave the served versions as they were. The
first run is `local_runner.py` as a user starts it, in its own process, so its
whole output (C++ logs included) is what a user would see.
"""

import base64
import dataclasses
import glob
import io
import json
import os
import re
import shutil
import subprocess
import sys
from typing import List, Tuple

from PIL import Image
import pytest
import tensorflow as tf

from contracts import names
import local_runner
import report
from contracts import configs
from contracts import features
from contracts import serving
from run_report import build as report_build
from serving import model_card
from serving import serving_config
from serving import serving_dir
from serving import serving_ops
from tests import headless_browser
from tests.fixtures import synthetic_busi

pytestmark = pytest.mark.e2e

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_FAST = ['--image-size', '32', '--epochs', '2', '--beam-workers', '1']

# Third-party notices a run printed dozens of times before models/__init__.py
# filtered them at their source; none may come back.
THIRD_PARTY_NOISE = (
    'FutureWarning',  # google.api_core on Python 3.10, google-cloud-aiplatform
    'property_predicate is not supported',  # TFX's input resolution
    'is deprecated and will be removed',  # TensorFlow's and TFMA's deprecation notes
    'Unable to register cu',  # TensorFlow's CUDA plugins at import, on a CPU machine
    'payload_format custom property',  # the Trainer reading Transform's examples
    'Error in PredictCost()',  # Grappler on a crop op (models/lesion_net.py's LesionCrop)
)


@dataclasses.dataclass(frozen=True)
class Run:
  """One `local_runner.py` run: what it printed and what it changed."""
  exit_code: int
  out: str
  err: str
  reports: Tuple[str, ...]  # the report pages this run wrote
  served_before: Tuple[int, ...]
  served_after: Tuple[int, ...]


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
  root = tmp_path_factory.mktemp('e2e')
  data = synthetic_busi.write_dataset(str(root / 'data'), per_class=10)
  return {'data': data, 'out': str(root / 'out')}


def _flags(workspace, *flags, data=None) -> List[str]:
  return ['--data-root', data or workspace['data'], '--output-dir', workspace['out'],
          *_FAST, *flags]


def _model_base(workspace):
  return os.path.join(workspace['out'], 'serving_model', 'busi_classifier')


def _reports(workspace):
  return sorted(glob.glob(os.path.join(workspace['out'], report_build.REPORTS_DIR, '*.html')))


def _program(program, *args) -> Tuple[int, str, str]:
  """Runs a command-line program as a user would, without the Makefile's settings."""
  env = {k: v for k, v in os.environ.items()
         if k not in ('TF_CPP_MIN_LOG_LEVEL', 'PYTHONWARNINGS', 'TF_USE_LEGACY_KERAS')}
  env['PYTHONPATH'] = _REPO
  completed = subprocess.run([sys.executable, os.path.join(_REPO, program), *args],
                             cwd=_REPO, env=env, capture_output=True, text=True, check=False)
  return completed.returncode, completed.stdout, completed.stderr


def _pipeline_run(workspace, *flags) -> Run:
  served_before = tuple(serving_dir.served_versions(_model_base(workspace)))
  reports_before = set(_reports(workspace))
  exit_code, out, err = _program('local_runner.py', *_flags(workspace, *flags))
  return Run(exit_code, out, err, tuple(sorted(set(_reports(workspace)) - reports_before)),
             served_before, tuple(serving_dir.served_versions(_model_base(workspace))))


@pytest.fixture(scope='module')
def first_run(workspace) -> Run:
  """A run at floors any model meets: it pushes the first version."""
  return _pipeline_run(workspace, '--min-accuracy', '0', '--min-malignant-recall', '0')


@pytest.fixture(scope='module')
def second_run(workspace, first_run) -> Run:
  """A run at an accuracy floor no model meets, against the first run's model."""
  del first_run  # built first: its push is this run's baseline
  return _pipeline_run(workspace, '--min-accuracy', '1.0')


def test_first_run_pushes_a_servable_model(workspace, first_run):
  assert first_run.exit_code == 0, first_run.err
  assert 'Blessed: yes' in first_run.out
  assert 'malignant_sensitivity' in first_run.out
  assert 'Operating point: malignant threshold ' in first_run.out
  assert 'Not sure: flagged when 1 - the largest score reaches ' in first_run.out
  assert first_run.served_before == () and len(first_run.served_after) == 1
  model = tf.saved_model.load(os.path.join(_model_base(workspace),
                                           str(first_run.served_after[0])))
  image = open(os.path.join(workspace['data'], 'benign', 'benign (1).png'), 'rb').read()
  outputs = model.signatures['serving_images'](image_bytes=tf.constant([image]))
  scores = outputs['scores']
  assert scores.shape == (1, 3)
  assert abs(float(tf.reduce_sum(scores)) - 1.0) < 1e-5
  assert outputs['decision'].numpy()[0].decode() in ('refer', 'benign', 'normal')


@pytest.mark.parametrize('noise', THIRD_PARTY_NOISE)
def test_a_run_prints_no_third_party_noise(first_run, noise):
  assert first_run.exit_code == 0, first_run.err
  assert noise not in first_run.out + first_run.err


def test_predict_prints_no_third_party_noise(workspace, first_run):
  assert first_run.exit_code == 0, first_run.err
  image = os.path.join(workspace['data'], 'malignant', 'malignant (1).png')
  exit_code, out, err = _program('predict.py', image, '--model-dir', _model_base(workspace))
  assert exit_code == 0, err
  assert out.startswith(image + '\t')
  assert [noise for noise in THIRD_PARTY_NOISE if noise in out + err] == []


def test_the_push_carries_a_model_card_and_tf_serving_config(workspace, first_run):
  """The card of the first push records what the run measured and was compared with."""
  base = _model_base(workspace)
  (version,) = first_run.served_after
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
  # The decision served is the one the card's operating point describes.
  point = card.operating_point
  assert point.target_sensitivity == 0.90 and point.split == 'eval'
  assert point.sensitivity.total == card.data.split_counts['eval'].get('malignant', 0)
  served = tf.saved_model.load(os.path.join(base, str(version))).signatures['serving_images']
  image = open(os.path.join(workspace['data'], 'malignant', 'malignant (1).png'), 'rb').read()
  outputs = served(image_bytes=tf.constant([image]))
  assert float(outputs['malignant_threshold'][0]) == pytest.approx(point.threshold)
  malignant_score = float(outputs['scores'][0][features.CLASS_NAMES.index('malignant')])
  assert (outputs['decision'].numpy()[0].decode() == 'refer') == (
      malignant_score >= point.threshold)
  with open(os.path.join(base, str(version), serving.ASSETS_EXTRA,
                         serving.MODEL_CARD_MARKDOWN_FILE)) as f:
    assert f'# busi_classifier, version {version}' in f.read()
  assert os.path.isfile(os.path.join(base, str(version), serving.ASSETS_EXTRA,
                                     serving.WARMUP_FILE))
  assert serving_config.read_served_versions(base) == serving_config.ServedVersions(version)
  (change,) = serving_ops.read_log(base)
  assert (change.action, change.stable, change.previous_stable) == ('push', version, None)


def _run_id(report_page: str) -> str:
  with open(report_page, encoding='utf-8') as f:
    return re.search(r'<title>BUSI pipeline run (.+?)</title>', f.read()).group(1)


def test_first_run_report_has_every_section_and_renders_offline(first_run, tmp_path):
  (report_page,) = first_run.reports
  page = open(report_page, encoding='utf-8').read()
  for section in report_build.SECTIONS:
    assert f'<section id="{section}">' in page
  assert 'Blessed: <span class="pass">yes</span>' in page
  assert re.search(r'Pointing game: <strong>[01]\.\d\d \(\d+ of \d+ ', page)
  pngs = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
  # counts, distributions, training, 4 evaluation, the operating point's ROC, Grad-CAM
  assert len(pngs) == 9
  assert re.search(r'A scan is <strong>refer</strong> when its calibrated malignant score '
                   r'is at least <strong>0\.\d{4}</strong>', page)
  for png in pngs:
    Image.open(io.BytesIO(base64.b64decode(png))).load()
  assert not re.search(r'(?:src|href)\s*=\s*["\']?(?:[a-z]+:)?//|<script|@import|url\(',
                       page, re.IGNORECASE)
  screenshot = str(tmp_path / 'report.png')
  assert headless_browser.screenshot(report_page, screenshot) == []
  darkest, lightest = Image.open(screenshot).convert('L').getextrema()
  assert darkest < 64 and lightest > 192  # text on a page, not a blank render


def test_examples_keep_near_duplicates_in_one_split_and_report_them(workspace, first_run):
  assert first_run.exit_code == 0, first_run.err
  audits = tf.io.gfile.glob(os.path.join(
      workspace['out'], 'tfx', 'ImageExampleGen', 'examples', '*',
      names.DATA_AUDIT_FILE))
  audit = json.loads(open(audits[0]).read())
  assert audit['ingested'] == 30
  assert sum(sum(c.values()) for c in audit['split_counts'].values()) == 30
  assert set(audit['split_counts']) == {'train', 'eval', 'test'}


def test_unreachable_thresholds_push_nothing(second_run):
  assert second_run.exit_code == 0, second_run.err
  assert 'Blessed: no' in second_run.out
  assert 'accuracy' in second_run.out.split('Failed checks:')[1]
  assert f'baseline: served version {second_run.served_before[-1]}' in second_run.out
  assert second_run.served_after == second_run.served_before


def test_report_command_rebuilds_a_past_run(workspace, first_run, second_run, tmp_path,
                                            capsys):
  """Rebuilt into a copy of the output dir: the runs' own pages stay as they were."""
  out = str(tmp_path / 'out')
  shutil.copytree(workspace['out'], out, ignore=shutil.ignore_patterns(
      report_build.REPORTS_DIR, '.run.lock'))
  (first_page,), (second_page,) = first_run.reports, second_run.reports
  for page in (first_page, second_page):
    assert report.main(['--output-dir', out, '--run-id', _run_id(page)]) == 0
    rebuilt = capsys.readouterr().out.strip()
    assert rebuilt == report_build.report_path(out, _run_id(page))
  first = open(report_build.report_path(out, _run_id(first_page)), encoding='utf-8').read()
  assert 'Blessed: <span class="pass">yes</span>' in first
  second = open(report_build.report_path(out, _run_id(second_page)), encoding='utf-8').read()
  assert 'Blessed: <span class="fail">no</span>' in second
  assert '<span class="fail">fail</span>' in second  # the unreachable accuracy floor
  assert 'Baseline (served version' in second
  assert '<h3>TFDV statistics</h3>' in second  # cached upstream outputs are found
  assert report.main(['--output-dir', out, '--run-id', 'no-such-run']) == 2
  assert "No run 'no-such-run'" in capsys.readouterr().err


def test_unknown_class_folder_over_the_quarantine_limit_stops_the_run(
    workspace, first_run, tmp_path, capsys):
  data = str(tmp_path / 'data')
  shutil.copytree(workspace['data'], data)
  synthetic_busi.write_dataset(data, per_class=4, classes=('cyst',))
  before = serving_dir.served_versions(_model_base(workspace))
  assert local_runner.main(_flags(workspace, '--min-accuracy', '0',
                                  '--min-malignant-recall', '0', data=data)) == 1
  message = capsys.readouterr().err
  assert 'Stopped at the data audit: 4 of 34 files quarantined' in message
  assert "cyst/cyst (1).png: unknown class folder 'cyst'" in message
  assert serving_dir.served_versions(_model_base(workspace)) == before


def test_data_outside_the_schema_stops_at_validation(workspace, first_run, tmp_path, capsys):
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
