"""The whole pipeline under LocalDagRunner on a small generated dataset.

One pipeline root and ML Metadata store serve the three runs, as they would for
a user: the second run reuses the cached upstream components, and its Evaluator
compares against the model the first run pushed.
"""

import json
import os
import shutil

import pytest
import tensorflow as tf

import local_runner
from components import serving_dir
from components.image_example_gen import executor as example_gen_executor
from tests import synthetic_busi

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


def test_examples_keep_near_duplicates_in_one_split_and_report_them(workspace):
  audits = tf.io.gfile.glob(os.path.join(
      workspace['out'], 'tfx', 'ImageExampleGen', 'examples', '*',
      example_gen_executor.AUDIT_FILE_NAME))
  audit = json.loads(open(audits[0]).read())
  assert audit['ingested'] == 30
  assert sum(sum(c.values()) for c in audit['split_counts'].values()) == 30
  assert set(audit['split_counts']) == {'train', 'eval', 'test'}


def test_unreachable_thresholds_push_nothing(workspace, capsys):
  before = serving_dir.served_versions(_model_base(workspace))
  assert _run(workspace, '--min-accuracy', '1.01') == 0
  printed = capsys.readouterr().out
  assert 'Blessed: no' in printed
  assert 'accuracy' in printed.split('Failed checks:')[1]
  assert f'baseline: served version {before[-1]}' in printed
  assert serving_dir.served_versions(_model_base(workspace)) == before


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
