"""The TF Serving stand-in answers as TF Serving 2.16.1's source says, one point a test.

Each test names the file (under `tensorflow_serving/` at tag 2.16.1), the
function and the lines whose behaviour it checks; tests/serving/fake_tf_serving.py
follows them.
"""

import base64
import json
import os
import time
import urllib.error
import urllib.request

import pytest
from tfx.utils import io_utils

from contracts import names
from contracts import serving
from serving import serving_config
from tests.serving import fake_tf_serving
from tests.serving import payloads

NAME = names.MODEL_NAME


def _call(url, body=None, method=None):
  data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
  request = urllib.request.Request(url, data=data, method=method)
  try:
    with urllib.request.urlopen(request) as response:
      return response.status, json.load(response)
  except urllib.error.HTTPError as error:
    text = error.read()
    return error.code, json.loads(text) if text else None


@pytest.fixture(scope='module')
def server(served):
  """Versions 17 and 18, labelled as a staged canary leaves them."""
  with fake_tf_serving.serving({17: served, 18: served}, NAME,
                               labels={serving.STABLE_LABEL: 17,
                                       serving.CANARY_LABEL: 18}) as url:
    yield url


def _image():
  return {'b64': base64.b64encode(payloads.encode(payloads.scan())).decode()}


@pytest.fixture()
def base(exported, tmp_path):
  base = str(tmp_path / NAME)
  for version in (1, 2):
    io_utils.copy_dir(exported.saved_model_dir, os.path.join(base, str(version)))
  return base


def _write(base, stable, canary=None, loading=()):
  serving_config.write_config_files(NAME, base, serving_config.ServedVersions(
      stable, canary, tuple(loading)))


def _settle(server, seconds=1.0):
  deadline = time.monotonic() + seconds
  while time.monotonic() < deadline:
    time.sleep(0.05)
  server.poll()


# ---- model_servers/server_core.cc, model_servers/server.cc ----


def test_a_label_may_not_move_to_a_version_that_is_not_loaded(base, served):
  """server_core.cc:469-479: UpdateModelVersionLabelMap first (504; refusal 531-538)."""
  _write(base, 1)
  with fake_tf_serving.watching(base, load=lambda path: served, load_delay_s=0.1) as tfs:
    _settle(tfs)
    assert tfs.versions[1].state == 'AVAILABLE'
    _write(base, 2)                         # list 2 and move stable to it, in one write
    _settle(tfs)
    assert tfs.labels == {'stable': 1}
    assert 2 not in tfs.versions            # refused whole: 2 is not even loading
    assert tfs.refusals[-1].endswith(
        f'Request to assign label to version 2 of model {NAME}, which is not currently '
        'available for inference')
    _write(base, 1, loading=(2,))           # the first of two steps
    _settle(tfs)
    assert tfs.versions[2].state == 'AVAILABLE' and tfs.labels == {'stable': 1}
    _write(base, 2)                         # the second
    _settle(tfs)
    assert tfs.labels == {'stable': 2} and tfs.versions[1].state == 'END'


def test_a_new_label_may_name_a_loading_version_only_with_the_flag(base, served):
  """server_core.cc:515-527: the flag allows a label that is new or names the same version."""
  _write(base, 1, canary=2)
  with fake_tf_serving.watching(base, load=lambda path: served, load_delay_s=0.5) as tfs:
    assert tfs.labels == {'stable': 1, 'canary': 2}
    assert tfs.versions[2].state == 'LOADING'
  strict = fake_tf_serving.TfServing(NAME, lambda path: served, base,
                                     allow_version_labels_for_unavailable_models=False)
  strict.poll()
  assert 'Request to assign label to version' in strict.refusals[-1]


def test_listed_versions_load_after_a_delay_and_unlisted_ones_end(base, served):
  """server_core.cc:479 AddModelsViaModelConfigList: listed versions load, LOADING first."""
  _write(base, 1)
  with fake_tf_serving.watching(base, load=lambda path: served, load_delay_s=0.6) as tfs:
    assert tfs.versions[1].state == 'LOADING'
    status, body = _call(f'{tfs.url}/v1/models/{NAME}/versions/1')
    assert status == 200 and body['model_version_status'][0]['state'] == 'LOADING'
    _settle(tfs)
    assert tfs.versions[1].state == 'AVAILABLE'


def test_a_version_that_fails_to_load_ends_with_its_error(tmp_path, served):
  """get_model_status_impl.cc:54-62: the state END and the servable's health as `status`."""
  base = str(tmp_path / NAME)
  os.makedirs(os.path.join(base, '3'))
  _write(base, 3)

  def load(path):
    raise OSError(f'SavedModel file does not exist at: {path}')
  with fake_tf_serving.watching(base, load=load, load_delay_s=0.0) as tfs:
    _settle(tfs, 0.2)
    status, body = _call(f'{tfs.url}/v1/models/{NAME}/versions/3')
  entry = body['model_version_status'][0]
  assert status == 200 and entry['state'] == 'END'
  assert 'SavedModel file does not exist' in entry['status']['error_message']


def test_a_config_that_does_not_parse_keeps_the_old_one(base, served):
  """server.cc:162-170 PollFilesystemAndReloadConfig logs the parse error and returns."""
  _write(base, 1)
  with fake_tf_serving.watching(base, load=lambda path: served, load_delay_s=0.0) as tfs:
    with open(os.path.join(os.path.dirname(base), serving.MODELS_CONFIG_FILE), 'w') as f:
      f.write('model_config_list {')
    _settle(tfs, 0.2)
    assert tfs.labels == {'stable': 1} and tfs.versions[1].state == 'AVAILABLE'
    assert tfs.refusals[-1].startswith('Failed to read ModelServerConfig file')


# ---- model_servers/get_model_status_impl.cc, get_model_metadata_impl.cc ----


def test_status_of_one_version_and_of_an_unknown_one(server):
  """get_model_status_impl.cc:82-101: one version, or all; NOT_FOUND when unknown."""
  assert _call(f'{server}/v1/models/{NAME}/versions/17') == (200, {'model_version_status': [
      {'version': '17', 'state': 'AVAILABLE',
       'status': {'error_code': 'OK', 'error_message': ''}}]})
  assert _call(f'{server}/v1/models/{NAME}/versions/5') == (
      404, {'error': f'Could not find version 5 of model {NAME}'})
  assert _call(f'{server}/v1/models/nope') == (
      404, {'error': 'Could not find any versions of model nope'})


def test_status_by_label_lists_every_version(server):
  """get_model_status_impl.cc:82: only model_spec.version is looked at, never the label."""
  status, body = _call(f'{server}/v1/models/{NAME}/labels/canary')
  assert status == 200
  assert [entry['version'] for entry in body['model_version_status']] == ['17', '18']


def test_metadata_resolves_a_label_to_its_version(server):
  """get_model_metadata_impl.cc:52-60: model_spec.version from the servable handle."""
  status, body = _call(f'{server}/v1/models/{NAME}/labels/canary/metadata')
  assert status == 200 and body['model_spec']['version'] == '18'
  assert set(body['metadata']['signature_def']['signature_def']) >= {
      serving.SERVING_DEFAULT, serving.SERVING_IMAGES}


# ---- model_servers/http_rest_api_util.cc, http_server.cc, server_core.cc ----


def test_an_unknown_label_is_400(server):
  """server_core.cc:839-840 INVALID_ARGUMENT; http_server.cc:56-57 makes it 400."""
  status, body = _call(f'{server}/v1/models/{NAME}/labels/blue:predict',
                       {'signature_name': serving.SERVING_IMAGES, 'instances': [_image()]})
  assert (status, body) == (400, {'error': 'Unrecognized servable version label: blue'})


def test_an_unloaded_version_is_404(server):
  """No servable for the request: NOT_FOUND, 404 (http_server.cc:60-61)."""
  status, body = _call(f'{server}/v1/models/{NAME}/versions/5:predict',
                       {'instances': [_image()]})
  assert (status, body) == (404, {'error': f'Servable not found for request: '
                                           f'Specific({NAME}, 5)'})


def test_a_malformed_route_is_400_and_a_path_outside_v1_is_404(server):
  """http_rest_api_handler.cc:74-75 "Malformed request"; evhttp_server.cc:175-176 404."""
  assert _call(f'{server}/v1/models/{NAME}:explain', {'instances': [1]}) == (
      400, {'error': f'Malformed request: POST /v1/models/{NAME}:explain'})
  assert _call(f'{server}/v1/models/{NAME}/versions/x') == (
      400, {'error': f'Malformed request: GET /v1/models/{NAME}/versions/x'})
  assert _call(f'{server}/v2/models/{NAME}')[0] == 404


def test_paths_match_case_insensitively(server):
  """http_rest_api_util.cc:31-34: kPredictionApiGegex, kModelStatusApiRegex begin (?i)."""
  status, body = _call(f'{server}/V1/MODELS/{NAME}/Labels/canary:PREDICT',
                       {'signature_name': serving.SERVING_IMAGES, 'instances': [_image()]})
  assert status == 200 and len(body['predictions']) == 1


# ---- util/json_tensor.cc ----


def test_an_empty_batch_is_400_in_rows_and_empty_outputs_in_columns(server):
  """json_tensor.cc:633-635 "No values in 'instances' array"; `inputs` (640-647) has none."""
  status, body = _call(f'{server}/v1/models/{NAME}:predict',
                       {'signature_name': serving.SERVING_IMAGES, 'instances': []})
  assert status == 400 and body['error'].endswith("No values in 'instances' array")
  status, body = _call(f'{server}/v1/models/{NAME}:predict',
                       {'signature_name': serving.SERVING_IMAGES,
                        'inputs': {serving.IMAGE_BYTES_INPUT: []}})
  assert status == 200
  assert body['outputs'][serving.SCORES_OUTPUT] == []


def test_input_types_come_from_the_signature(server):
  """json_tensor.cc:209-212 TypeError: the value must be of the input's dtype."""
  status, body = _call(f'{server}/v1/models/{NAME}:predict',
                       {'signature_name': serving.SERVING_IMAGES, 'instances': [3]})
  assert status == 400 and body['error'].endswith('is not of expected type: string')


def test_both_or_neither_request_format_is_400(server):
  """json_tensor.cc:624-650, 421; http_rest_api_handler.cc:237 for the signature."""
  assert _call(f'{server}/v1/models/{NAME}:predict', {'instances': [1], 'inputs': [1]})[0] == 400
  assert _call(f'{server}/v1/models/{NAME}:predict', {'signature_name': 'x'}) == (
      400, {'error': 'Serving signature name: "x" not found in signature def'})
  assert _call(f'{server}/v1/models/{NAME}:predict', {}) == (
      400, {'error': "Missing 'inputs' or 'instances' key"})
  assert _call(f'{server}/v1/models/{NAME}:predict', b'') == (
      400, {'error': 'JSON Parse error: The document is empty'})


def test_classify_and_regress_refuse_the_predict_signatures(server):
  """classifier.cc:195-199, regressor.cc:190-192: the one input must be named `inputs`."""
  for verb in ('classify', 'regress'):
    status, body = _call(f'{server}/v1/models/{NAME}:{verb}',
                         {'examples': [{'image': {'b64': _image()['b64']}}]})
    assert status == 400 and 'inputs found in SignatureDef' in body['error']
