"""Classifies ultrasound images with a pushed model, locally or through TF Serving.

    python predict.py IMAGE_OR_FOLDER... [--model-dir DIR] [--json] [--site NAME]
    python predict.py IMAGE_OR_FOLDER... --server http://HOST:8501 [--model-name NAME]
        [--version N | --label stable|canary] [--request-format instances|inputs]

Both ways send each file's bytes, as they are, to the model's `serving_images`
signature: decoding and preprocessing run inside the model, so this client has
none to get wrong. The --server path needs only the standard library, so it
starts without loading TensorFlow. The model version that answered is printed
first (on stderr, with the model card's headline metrics for a local model) and
is in every --json entry.
"""

import argparse
import base64
import dataclasses
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Dict, List, Optional, Sequence

from contracts import features
from contracts import metric_values
from contracts import names
from contracts import operating_point as op
from contracts import printable
from contracts import serving

DEFAULT_MODEL_DIR = os.path.join('outputs', 'serving_model', names.MODEL_NAME)


class PredictionError(Exception):
  """The model refused one image; the message says why, on one line."""


class UsageError(Exception):
  """Bad command-line input: a path, a model directory or a server."""


@dataclasses.dataclass(frozen=True)
class Prediction:
  # The clinical decision at the model's malignant operating point: `refer`,
  # else the likelier other class (contracts/operating_point.py).
  decision: str
  label: str                        # the class of that decision (`malignant` for `refer`)
  malignant_threshold: float        # the threshold the decision used
  # The model is not sure of this scan (models/not_sure.py): have a radiologist
  # read it, whatever the decision.
  not_sure: bool
  probabilities: Dict[str, float]   # class name -> probability, in the model's order


def _text(value) -> str:
  return value.decode() if isinstance(value, bytes) else value


def _prediction(outputs: Dict[str, Sequence]) -> Prediction:
  """One image's outputs: TF Serving's JSON, or the signature's arrays (strings as bytes)."""
  return Prediction(
      decision=_text(outputs[serving.DECISION_OUTPUT]),
      label=_text(outputs[serving.LABEL_OUTPUT]),
      malignant_threshold=float(outputs[serving.THRESHOLD_OUTPUT]),
      not_sure=bool(outputs[serving.NOT_SURE_OUTPUT]),
      probabilities={_text(name): float(score) for name, score in zip(
          outputs[serving.CLASSES_OUTPUT], outputs[serving.SCORES_OUTPUT])})


class LocalModel:
  """A pushed SavedModel on disk, called through its signature as TF Serving would.

  Given the base folder, it takes the version TF Serving serves as `stable`
  (or the newest, without a models.config), as the Evaluator does.
  """

  def __init__(self, model_dir: str):
    # Imported here so that the --server path never loads TensorFlow.
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    import models  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from serving import model_card  # pylint: disable=g-import-not-at-top
    from serving import serving_dir  # pylint: disable=g-import-not-at-top
    self._tf = tf
    try:
      saved_model_dir = serving_dir.version_to_read(model_dir)
    except ValueError as error:
      raise UsageError(f'--model-dir {model_dir}: {error}') from None
    self.path = saved_model_dir
    try:
      saved_model = tf.saved_model.load(saved_model_dir)
    except (OSError, ValueError, tf.errors.OpError) as error:
      raise UsageError(f'--model-dir {saved_model_dir}: not a loadable SavedModel: '
                       f'{printable.tf_error_reason(str(error))}') from None
    if serving.SERVING_IMAGES not in saved_model.signatures:
      raise UsageError(f'--model-dir {saved_model_dir}: the model has no '
                       f'{serving.SERVING_IMAGES} signature')
    self._signature = saved_model.signatures[serving.SERVING_IMAGES]
    name = os.path.basename(os.path.normpath(saved_model_dir))
    self.version = int(name) if name.isdigit() else None
    card = model_card.read_card(saved_model_dir)
    self.headline = card.headline() if card else {}

  def describe(self) -> str:
    metrics = ('  ' + ' '.join(f'{name}={metric_values.text(value, 3)}'
                               for name, value in self.headline.items())
               if self.headline else '  (no model card)')
    return f'model {self.path}, version {self.version}{metrics}'

  def predict(self, image: bytes) -> Prediction:
    try:
      outputs = self._signature(**{serving.IMAGE_BYTES_INPUT: self._tf.constant([image])})
    except self._tf.errors.InvalidArgumentError as error:
      raise PredictionError(printable.tf_error_reason(error.message)) from None
    return _prediction({name: values.numpy()[0] for name, values in outputs.items()})


class ServedModel:
  """A model behind TF Serving's REST API: POST /v1/models/NAME[/versions/N|/labels/L]:predict.

  `request_format` is TF Serving's row (`instances`) or columnar (`inputs`)
  format; both send the same tensor. Without a version or label TF Serving
  answers with the highest version it has loaded.
  """

  def __init__(self, server: str, model_name: str, timeout_s: float,
               version: Optional[int] = None, label: Optional[str] = None,
               request_format: str = 'instances'):
    self.model_url = f'{server.rstrip("/")}/v1/models/{model_name}'
    if version is not None:
      self.model_url += f'/versions/{version}'
    elif label:
      self.model_url += f'/labels/{label}'
    self.url = f'{self.model_url}:predict'
    self._timeout_s = timeout_s
    self._request_format = request_format
    self._label = label if version is None else None
    self.version = self._served_version()

  def _call(self, url: str, body: Optional[bytes] = None):
    request = urllib.request.Request(
        url, data=body, headers={'Content-Type': 'application/json'})
    try:
      with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
        return json.load(response)
    except urllib.error.HTTPError as error:
      raise self._refusal(error, url) from None
    except (urllib.error.URLError, OSError) as error:
      reason = getattr(error, 'reason', error)
      raise UsageError(f'--server: cannot reach {url}: {reason}') from None

  def _served_version(self) -> Optional[int]:
    """The version that answers, as TF Serving 2.16.1 reports it.

    A label is resolved by the metadata API (`model_spec.version`): the status
    API ignores labels and lists every version
    (`model_servers/get_model_status_impl.cc`). Without a label the status
    API's highest AVAILABLE version answers, as TF Serving's `Latest` does.
    """
    try:
      if self._label:
        return int(self._call(f'{self.model_url}/metadata')['model_spec']['version'])
      status = self._call(self.model_url)
    except PredictionError as error:
      raise UsageError(f'--server: {self.model_url}: {error}') from None
    versions = [int(s['version']) for s in status.get('model_version_status', [])
                if s.get('state') == 'AVAILABLE']
    if not versions:
      raise UsageError(f'--server: {self.model_url} has no AVAILABLE version')
    return max(versions)

  def describe(self) -> str:
    return f'model {self.model_url}, version {self.version}'

  def predict(self, image: bytes) -> Prediction:
    encoded = [{'b64': base64.b64encode(image).decode('ascii')}]
    body = {'signature_name': serving.SERVING_IMAGES}
    if self._request_format == 'inputs':
      body['inputs'] = {serving.IMAGE_BYTES_INPUT: encoded}
      outputs = self._call(self.url, json.dumps(body).encode())['outputs']
      return _prediction({name: values[0] for name, values in outputs.items()})
    body['instances'] = encoded
    return _prediction(self._call(self.url, json.dumps(body).encode())['predictions'][0])

  def _refusal(self, error: urllib.error.HTTPError, url: str) -> Exception:
    """TF Serving answers 400 with {"error": ...} for a bad input; else it is us."""
    text = error.read().decode('utf-8', 'replace')
    try:
      message = json.loads(text)['error']
    except (ValueError, KeyError, TypeError):
      message = text.strip()[:200]
    if error.code == 400:
      return PredictionError(printable.tf_error_reason(message))
    return UsageError(f'--server: {url} answered {error.code}: '
                      f'{printable.tf_error_reason(message)}')


def find_images(paths: Sequence[str]) -> List[str]:
  """The files named, plus every scan (not mask) in the folders named, sorted."""
  images = []
  for path in paths:
    if os.path.isfile(path):
      images.append(path)
    elif os.path.isdir(path):
      found = sorted(
          os.path.join(folder, name)
          for folder, _, names in os.walk(path) for name in names
          if name.lower().endswith(serving.IMAGE_EXTENSIONS)
          and not features.MASK_NAME_PATTERN.fullmatch(os.path.splitext(name)[0]))
      if not found:
        raise UsageError(f'{path}: folder holds no '
                         f'{"/".join(serving.IMAGE_EXTENSIONS)} images')
      images.extend(found)
    else:
      raise UsageError(f'{path}: no such file or folder')
  return images


def _read(image: str) -> bytes:
  try:
    with open(image, 'rb') as f:
      return f.read()
  except OSError as error:
    raise PredictionError(f'cannot read the file: {error.strerror}') from None


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog='predict', description=__doc__.split('\n')[0])
  parser.add_argument('images', nargs='+', metavar='IMAGE',
                      help='PNG/JPEG files, or folders to search for them')
  target = parser.add_mutually_exclusive_group()
  target.add_argument('--model-dir', default=DEFAULT_MODEL_DIR,
                      help='a pushed model: its version folder, or the base folder '
                           'whose newest version is used (default: %(default)s)')
  target.add_argument('--server', help='TF Serving REST address, e.g. '
                                       'http://localhost:8501')
  parser.add_argument('--model-name', default=names.MODEL_NAME,
                      help='model name on the server (default: %(default)s)')
  pinned = parser.add_mutually_exclusive_group()
  pinned.add_argument('--version', type=int,
                      help='with --server: ask this model version')
  pinned.add_argument('--label', help='with --server: ask the version with this label '
                                      f'({serving.STABLE_LABEL}, {serving.CANARY_LABEL})')
  parser.add_argument('--request-format', choices=('instances', 'inputs'),
                      default='instances',
                      help="with --server: TF Serving's row (instances) or columnar "
                           '(inputs) request format')
  parser.add_argument('--timeout', type=float, default=30.0,
                      help='seconds to wait for each server reply')
  parser.add_argument('--json', action='store_true',
                      help='print one JSON array instead of a line per image')
  parser.add_argument('--site', help="decide at this site's own malignant threshold, "
                                     'which site_threshold.py recorded for the version '
                                     '(with --server, read from the default --model-dir)')
  return parser.parse_args(argv)


def site_point(version_dir: str, site: str) -> op.OperatingPoint:
  """The site's operating point in the version's table; UsageError without one."""
  path = os.path.join(version_dir, serving.ASSETS_EXTRA, op.SITE_POINTS_FILE)
  points = {}
  if os.path.isfile(path):
    with open(path, encoding='utf-8') as f:
      points = op.sites_from_json(f.read())
  if site not in points:
    raise UsageError(f'--site {site}: {version_dir} has no threshold for it (sites: '
                     f'{", ".join(sorted(points)) or "none"}); set one with '
                     '`make operating-point`')
  return points[site]


def at_site(prediction: Prediction, point: op.OperatingPoint) -> Prediction:
  """The prediction decided at the site's threshold instead of the model's."""
  decision, label = op.decision_at(prediction.probabilities, point.threshold)
  return dataclasses.replace(prediction, decision=decision, label=label,
                             malignant_threshold=point.threshold)


def _text_line(image: str, prediction: Optional[Prediction], error: str) -> str:
  image = printable.one_line(image)
  if prediction is None:
    return f'{image}\terror: {printable.one_line(error)}'
  scores = '  '.join(f'{name}={p:.4f}' for name, p in prediction.probabilities.items())
  return (f'{image}\t{prediction.decision}\t{scores}\t'
          f'{serving.THRESHOLD_OUTPUT}={prediction.malignant_threshold:.4f}\t'
          f'{serving.NOT_SURE_OUTPUT}={str(prediction.not_sure).lower()}')


def main(argv: Sequence[str]) -> int:
  args = _parse_args(argv)
  try:
    images = find_images(args.images)
    if not args.server and (args.version is not None or args.label):
      raise UsageError('--version and --label go with --server; locally, pass the '
                       'version folder as --model-dir')
    model = (ServedModel(args.server, args.model_name, args.timeout, args.version,
                         args.label, args.request_format) if args.server
             else LocalModel(args.model_dir))
    print(model.describe(), file=sys.stderr, flush=True)
    point = None
    if args.site:
      point = site_point(model.path if not args.server else
                         os.path.join(args.model_dir, str(model.version)), args.site)
      print(f'site {args.site}: {point.summary_line()}', file=sys.stderr, flush=True)
    results = []
    for image in images:
      try:
        prediction, error = model.predict(_read(image)), ''
        if point:
          prediction = at_site(prediction, point)
      except PredictionError as e:
        prediction, error = None, str(e)
      results.append((image, prediction, error))
      if not args.json:
        print(_text_line(image, prediction, error), flush=True)
  except UsageError as e:
    print(f'predict: error: {e}', file=sys.stderr)
    return 2
  if args.json:
    json.dump([{'image': image, 'version': model.version,
                **(dataclasses.asdict(prediction) if prediction else {'error': error})}
               for image, prediction, error in results], sys.stdout, indent=1)
    print()
  return 1 if any(prediction is None for _, prediction, _ in results) else 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
