"""The `predict` command, against a pushed model on disk and over TF Serving's REST API."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tfx.utils import io_utils

from contracts import features
from contracts import names
from contracts import serving
from tests.serving import fake_tf_serving
from tests.serving import payloads

import predict

_PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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
  with fake_tf_serving.serving(served, names.MODEL_NAME) as url:
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


def test_server_gives_what_the_local_model_gives(capsys, server, model_base_dir,
                                                 image_folder):
  _, local = _run_json(capsys, [image_folder, '--model-dir', model_base_dir])
  status, remote = _run_json(capsys, [image_folder, '--server', server])
  assert status == 0
  assert [r['label'] for r in remote] == [r['label'] for r in local]
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
  assert lines[0].split('\t')[1] in features.CLASS_NAMES
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
    (['{image}', '--server', '{server}', '--model-name', 'nope'],
     'answered 404: Servable not found'),
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
  image, label, scores = completed.stdout.strip().split('\t')
  assert image.endswith('normal (1).png') and label in features.CLASS_NAMES
  assert [s.split('=')[0] for s in scores.split()] == list(features.CLASS_NAMES)
