"""The `predict` command, against a pushed model on disk and over TF Serving's REST API."""

import base64
import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from tfx.utils import io_utils

from contracts import features
from contracts import names
from contracts import serving
from serving import model_card
from serving import serving_ops
from tests.serving import fake_tf_serving
from tests.serving import payloads

import predict

_PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# What the served decision can be: refer, or one of the other classes.
_DECISIONS = ('refer', *(c for c in features.CLASS_NAMES if c != features.MALIGNANT_CLASS))


@pytest.fixture(scope='module')
def model_base_dir(exported, tmp_path_factory):
  """A serving directory as the Pusher leaves it: numbered versions, newest served."""
  base = tmp_path_factory.mktemp('serving') / names.MODEL_NAME
  io_utils.copy_dir(exported.saved_model_dir, str(base / '17'))
  return str(base)


@pytest.fixture(scope='module')
def image_folder(tmp_path_factory):
  """BUSI's layout: scans with masks beside them, in class folders."""
  root = tmp_path_factory.mktemp('images')
  for seed, label in enumerate(features.CLASS_NAMES):
    os.makedirs(root / label)
    (root / label / f'{label} (1).png').write_bytes(
        payloads.encode(payloads.scan(seed, label)))
    (root / label / f'{label} (1)_mask.png').write_bytes(
        payloads.encode(np.zeros((8, 8), np.uint8)))
  (root / 'benign' / 'benign (2).jpg').write_bytes(
      payloads.encode(payloads.scan(7, 'benign'), 'JPEG'))
  return str(root)


@pytest.fixture(scope='module')
def server(served):
  """Two versions of one model, labelled as a staged canary leaves them."""
  with fake_tf_serving.serving({17: served, 18: served}, names.MODEL_NAME,
                               labels={serving.STABLE_LABEL: 17,
                                       serving.CANARY_LABEL: 18}) as url:
    yield url


def _run_json(capsys, argv):
  status = predict.main([*argv, '--json'])
  return status, json.loads(capsys.readouterr().out)


def test_folder_with_local_model_matches_the_signature(capsys, served, model_base_dir,
                                                       image_folder):
  status, results = _run_json(capsys, [image_folder, '--model-dir', model_base_dir])
  assert status == 0
  names = [os.path.relpath(r['image'], image_folder) for r in results]
  assert names == ['benign/benign (1).png', 'benign/benign (2).jpg',
                   'malignant/malignant (1).png', 'normal/normal (1).png']
  for result in results:
    with open(result['image'], 'rb') as f:
      expected = served.signatures[serving.SERVING_IMAGES](
          image_bytes=tf.constant([f.read()]))
    assert list(result['probabilities']) == list(features.CLASS_NAMES)
    np.testing.assert_allclose(list(result['probabilities'].values()),
                               expected['scores'][0], atol=1e-6)
    assert result['label'] == expected['label'][0].numpy().decode()
    assert result['decision'] == expected['decision'][0].numpy().decode()
    assert result['malignant_threshold'] == pytest.approx(
        float(expected['malignant_threshold'][0]))
    assert result['not_sure'] is bool(expected['not_sure'][0])


def test_server_gives_what_the_local_model_gives(capsys, server, model_base_dir,
                                                 image_folder):
  _, local = _run_json(capsys, [image_folder, '--model-dir', model_base_dir])
  status, remote = _run_json(capsys, [image_folder, '--server', server])
  assert status == 0
  assert [r['label'] for r in remote] == [r['label'] for r in local]
  assert [r['decision'] for r in remote] == [r['decision'] for r in local]
  assert [r['not_sure'] for r in remote] == [r['not_sure'] for r in local]
  for r, l in zip(remote, local):
    np.testing.assert_allclose(list(r['probabilities'].values()),
                               list(l['probabilities'].values()), atol=1e-6)


@pytest.mark.parametrize('target', ['local', 'server'])
def test_a_bad_image_fails_alone_with_its_reason(capsys, tmp_path, server,
                                                 model_base_dir, target):
  good = tmp_path / 'good.png'
  good.write_bytes(payloads.encode(payloads.scan()))
  huge = tmp_path / 'huge.png'
  huge.write_bytes(payloads.png_header(20000, 20000))
  notes = tmp_path / 'notes.png'
  notes.write_bytes(b'not an image')
  flags = ['--model-dir', model_base_dir] if target == 'local' else ['--server', server]
  status = predict.main([str(good), str(huge), str(notes), *flags])
  lines = capsys.readouterr().out.splitlines()
  assert status == 1
  assert len(lines) == 3
  assert lines[0].split('\t')[1] in _DECISIONS
  assert lines[1] == (f'{huge}\terror: Invalid image: 20000x20000 pixels; '
                      'the limit is 50000000 pixels in all')
  assert lines[2] == (f'{notes}\terror: Invalid image: expected PNG or JPEG bytes, '
                      'got 12 bytes of something else')


def _closed_port_url() -> str:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return f'http://127.0.0.1:{s.getsockname()[1]}'


@pytest.mark.parametrize('argv,message', [
    (['missing.png'], 'predict: error: missing.png: no such file or folder'),
    (['{empty}'], 'folder holds no .png/.jpg/.jpeg images'),
    (['{image}', '--model-dir', '{empty}'], 'no SavedModel there'),
    (['{image}', '--model-dir', '{broken}'], 'not a loadable SavedModel'),
    # TF Serving 2.16.1's model status and metadata answers (tf_serving_standin_test.py).
    (['{image}', '--server', '{server}', '--model-name', 'nope'],
     'answered 404: Could not find any versions of model nope'),
    (['{image}', '--server', '{server}', '--version', '3'],
     'answered 404: Could not find version 3 of model busi_classifier'),
    (['{image}', '--server', '{server}', '--label', 'beta'],
     '/labels/beta: Unrecognized servable version label: beta'),
    (['{image}', '--version', '3'], '--version and --label go with --server'),
    (['{image}', '--server', '{closed}'], 'cannot reach http://127.0.0.1:'),
])
def test_bad_usage_is_one_line_without_traceback(capsys, tmp_path, server, argv,
                                                  message):
  empty = tmp_path / 'empty'
  empty.mkdir()
  image = tmp_path / 'scan.png'
  image.write_bytes(payloads.encode(payloads.scan()))
  broken = tmp_path / 'broken'
  broken.mkdir()
  (broken / 'saved_model.pb').write_bytes(b'not a protobuf')
  values = {'empty': empty, 'image': image, 'server': server, 'broken': broken,
            'closed': _closed_port_url()}
  status = predict.main([arg.format(**values) for arg in argv])
  err = capsys.readouterr().err
  assert status == 2
  assert message in err and len(err.strip().splitlines()) == 1


def test_command_line_over_rest_prints_a_line_per_image(server, image_folder):
  completed = subprocess.run(
      [sys.executable, os.path.join(_PROJECT_DIR, 'predict.py'),
       os.path.join(image_folder, 'normal'), '--server', server],
      capture_output=True, text=True, timeout=60, check=False)
  assert completed.returncode == 0, completed.stderr
  image, decision, scores, threshold, unsure = completed.stdout.strip().split('\t')
  assert image.endswith('normal (1).png') and decision in _DECISIONS
  assert [s.split('=')[0] for s in scores.split()] == list(features.CLASS_NAMES)
  assert threshold.startswith('malignant_threshold=') and 0 <= float(threshold[20:]) <= 1
  assert unsure in ('not_sure=true', 'not_sure=false')


@pytest.mark.parametrize('flags,version', [
    ([], 18),                                   # TF Serving: the highest version
    (['--version', '17'], 17),
    (['--label', 'stable'], 17),
    (['--label', 'canary'], 18),
    (['--request-format', 'inputs'], 18),
    (['--label', 'stable', '--request-format', 'inputs'], 17),
])
def test_every_rest_form_gives_the_local_scores_and_names_the_version(
    capsys, server, model_base_dir, image_folder, flags, version):
  _, local = _run_json(capsys, [image_folder, '--model-dir', model_base_dir])
  status = predict.main([image_folder, '--server', server, *flags, '--json'])
  captured = capsys.readouterr()
  remote = json.loads(captured.out)
  assert status == 0
  assert captured.err.endswith(f', version {version}\n')
  assert {r['version'] for r in remote} == {version}
  assert [r['label'] for r in remote] == [r['label'] for r in local]
  for r, l in zip(remote, local):
    np.testing.assert_allclose(list(r['probabilities'].values()),
                               list(l['probabilities'].values()), atol=1e-6)


def test_the_served_version_and_its_card_are_shown(capsys, exported, tmp_path, image_folder):
  base = tmp_path / names.MODEL_NAME
  for version in (5, 6):
    io_utils.copy_dir(exported.saved_model_dir, str(base / str(version)))
  card = model_card.ModelCard(
      model_name=names.MODEL_NAME, version=5, pushed_at='2026-12-01T10:00:00+00:00',
      run_id='run-5', data=model_card.DataSummary('fp', {'benign': 1}, {'test': {'benign': 1}}),
      test_split='test', test_metrics={'accuracy': 0.875, 'auc_benign': 0.9},
      floors={'accuracy': 0.8}, regression_tolerance=0.0, baseline_version='',
      code_fingerprint='c', training_config={})
  model_card.write_card(str(base / '5'), card)
  serving_ops.rollback(str(base), 5)          # 6 is newer; 5 is served
  status, results = _run_json(capsys, [image_folder, '--model-dir', str(base)])
  assert status == 0 and {r['version'] for r in results} == {5}
  predict.main([image_folder, '--model-dir', str(base)])
  err = capsys.readouterr().err
  assert err == f'model {base / "5"}, version 5  accuracy=0.875\n'


def test_the_rest_stub_answers_as_tf_serving_documents(server, served):
  """Status, both request formats and the error bodies, seen from plain HTTP."""
  def call(path, body=None):
    request = urllib.request.Request(server + path,
                                     data=json.dumps(body).encode() if body else None)
    try:
      with urllib.request.urlopen(request) as response:
        return response.status, json.load(response)
    except urllib.error.HTTPError as error:
      return error.code, json.load(error)

  name = names.MODEL_NAME
  assert call(f'/v1/models/{name}') == (200, {'model_version_status': [
      {'version': v, 'state': 'AVAILABLE', 'status': {'error_code': 'OK',
                                                      'error_message': ''}}
      for v in ('17', '18')]})
  assert call(f'/v1/models/{name}/labels/canary/metadata')[1]['model_spec'][
      'version'] == '18'
  image = {'b64': base64.b64encode(payloads.encode(payloads.scan())).decode()}
  example = {'b64': base64.b64encode(tf.train.Example(features=tf.train.Features(
      feature={features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[payloads.encode(payloads.scan())]))})).SerializeToString()).decode()}
  status, rows = call(f'/v1/models/{name}/versions/17:predict',
                      {'signature_name': serving.SERVING_IMAGES, 'instances': [image, image]})
  assert status == 200 and len(rows['predictions']) == 2
  status, columns = call(f'/v1/models/{name}:predict', {'inputs': {serving.EXAMPLES_INPUT: [example]}})
  assert status == 200 and set(columns['outputs']) == {
      serving.SCORES_OUTPUT, serving.CLASSES_OUTPUT, serving.DECISION_OUTPUT,
      serving.THRESHOLD_OUTPUT, serving.NOT_SURE_OUTPUT}
  np.testing.assert_allclose(columns['outputs']['scores'][0],
                             rows['predictions'][0]['scores'], atol=1e-6)
  assert call(f'/v1/models/{name}:predict', {'instances': [], 'inputs': []})[0] == 400
  status, body = call(f'/v1/models/{name}:predict',
                      {'signature_name': 'nope', 'instances': [image]})
  assert status == 400 and 'nope' in body['error']
  status, body = call(f'/v1/models/{name}:predict',
                      {'signature_name': serving.SERVING_IMAGES, 'instances': [{'b64': ''}]})
  assert status == 400 and 'expected PNG or JPEG bytes' in body['error']
