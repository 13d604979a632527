"""Which "not sure" signal tells the served model's wrong decisions from its right ones.

Scores a pipeline run's trained model (the Trainer's export, rebuilt as a
Keras network so its penultimate layer can be read) on BUSI's eval and test
splits (ImageExampleGen's records, through the run's Transform graph) and on
BUS-BRA (bench/cross_site.py; benign and malignant only), and computes for
every scan the candidate signals, each oriented so that higher is less sure:

* `max_probability`: 1 - the largest calibrated score (models/not_sure.py);
* `energy`: -logsumexp of the class head's logits (Liu et al., 2020);
* `mahalanobis`: the smallest Mahalanobis distance to the train split's class
  means in the penultimate layer (Lee et al., 2018), in its leading principal
  components with a Ledoit-Wolf shared covariance, as a small train split allows;
* `view_disagreement`: the Jensen-Shannon divergence between the class head's
  scores from the whole-image features alone and from the lesion crop's alone
  (the head is linear, so its logits split into the two views' parts);
* `threshold_margin`: minus the distance, in logits, of the calibrated
  malignant score from the operating point's threshold, where the served
  decision flips between `refer` and the rest.

A decision is wrong when the class it stands for (`refer`: malignant) is not
the scan's label; a lesion called normal is wrong. Each signal's firing
threshold is set on the eval split as the Trainer sets the served flag's
(models/not_sure.py): it flags the least sure `--flag-fraction` of the eval scans. Per site the bench reports how often each signal fires and
its AUROC of error detection (wrong vs right decisions), with a bootstrap 95%
interval, and chooses the signal with the best eval AUROC; it is worth
shipping when its BUSI test AUROC reaches `SHIP_AUROC`.

  make bench-not-sure ARGS="--pipeline-root outputs"
"""

import argparse
import dataclasses
import datetime
import json
import os
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
from scipy import special
from sklearn import covariance
from sklearn import metrics
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from bench import cross_site
from contracts import configs
from contracts import features
from contracts import names
from models import grad_cam
from models import lesion_net
from models import model as model_lib
from models import not_sure
from models import operating_point
from run_report import examples as split_examples

SHIP_AUROC = 0.70
# Principal components the Mahalanobis distance is measured in: a few hundred
# train scans cannot estimate a covariance over the penultimate layer's ~2,500
# dimensions.
MAHALANOBIS_COMPONENTS = 32
BOOTSTRAP_DRAWS = 1000
SIGNALS = ('max_probability', 'energy', 'mahalanobis', 'view_disagreement',
           'threshold_margin')
_BATCH = 32
_RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results',
                        'not_sure.json')


@dataclasses.dataclass(frozen=True)
class TrainedRun:
  """What the bench reads from a pipeline run's outputs."""
  saved_model_dir: str
  transform_graph_dir: str
  examples_dir: str
  model_name: str
  temperature: float
  malignant_threshold: float


@dataclasses.dataclass
class Scored:
  """One set of scans as the network sees them."""
  labels: np.ndarray      # [n] class index
  penultimate: np.ndarray  # [n, d] the class head's input
  logits: np.ndarray      # [n, classes]
  view_logits: Dict[str, np.ndarray]  # 'context' / 'lesion' -> [n, classes]
  groups: np.ndarray      # [n] scanner (BUS-BRA) or '' (BUSI)


def _latest(folder: str) -> str:
  """The highest-numbered execution's output under a component's output folder."""
  runs = [d for d in tf.io.gfile.listdir(folder) if d.strip('/').isdigit()]
  if not runs:
    raise ValueError(f'{folder}: no execution output')
  return os.path.join(folder, max(runs, key=lambda d: int(d.strip('/'))).strip('/'))


def find_run(pipeline_root: str) -> TrainedRun:
  """The newest Trainer export of a pipeline root (the folder holding `tfx/`)."""
  tfx_dir = os.path.join(pipeline_root, 'tfx')
  try:
    model_dir = _latest(os.path.join(tfx_dir, 'Trainer', 'model'))
    saved_model_dir = os.path.join(model_dir, 'Format-Serving')
    summary_path = os.path.join(_latest(os.path.join(tfx_dir, 'Trainer', 'model_run')),
                                names.TRAINING_SUMMARY_FILE)
    with open(summary_path) as f:
      summary = json.load(f)
    point = operating_point.read(saved_model_dir)
    if point is None:
      raise ValueError(f'{saved_model_dir}: no operating point record')
    return TrainedRun(saved_model_dir,
                      _latest(os.path.join(tfx_dir, 'Transform', 'transform_graph')),
                      _latest(os.path.join(tfx_dir, 'ImageExampleGen', 'examples')),
                      summary['model'], float(summary['temperature']), point.threshold)
  except (OSError, tf.errors.OpError, KeyError) as e:
    raise ValueError(f'{pipeline_root}: not a finished pipeline run ({e})') from None


class Network:
  """The exported classifier, read at its class head's input."""

  def __init__(self, run: TrainedRun, class_names: Sequence[str], image_size: int):
    if run.model_name != 'lesion_net':
      raise ValueError(f'The bench reads lesion_net\'s two views; the run trained '
                       f'{run.model_name}')
    model = grad_cam.load_serving_model(
        run.saved_model_dir, configs.ModelConfig(name=run.model_name, image_size=image_size),
        len(class_names))
    head = model.get_layer(model_lib.CLASS_OUTPUT)
    self._weights, self._bias = (w.numpy().astype(np.float64) for w in head.weights)
    self._context_width = model.get_layer(lesion_net.CONTEXT_POOL).output.shape[-1]
    self._penultimate = keras.Model(model.input,
                                    model.get_layer(lesion_net.CLASS_HEAD_INPUT).output)

  def score(self, images: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> Scored:
    penultimate = np.concatenate([
        self._penultimate(tf.constant(images[i:i + _BATCH]), training=False).numpy()
        for i in range(0, len(images), _BATCH)]).astype(np.float64)
    width = self._context_width
    context = penultimate[:, :width] @ self._weights[:width] + self._bias
    lesion = penultimate[:, width:2 * width] @ self._weights[width:2 * width] + self._bias
    return Scored(labels, penultimate, penultimate @ self._weights + self._bias,
                  {'context': context, 'lesion': lesion}, groups)


def _served_mismatch(run: TrainedRun, scored: Scored, count: int = 8) -> float:
  """The largest difference between the bench's scores and the export's, on eval scans."""
  read = split_examples.read_split(run.examples_dir, 'eval', features.CLASS_NAMES,
                                   keep_payload=True)
  served = split_examples.predict(run.saved_model_dir, read.serialized[:count])
  ours = special.softmax(scored.logits[:count] / run.temperature, axis=1)
  return float(np.abs(served - ours).max())


def _busi_split(run: TrainedRun, split: str, class_names: Sequence[str],
                transform: tft.TFTransformOutput, network: Network) -> Scored:
  read = split_examples.read_split(run.examples_dir, split, class_names, keep_payload=True)
  if read is None:
    raise ValueError(f'{run.examples_dir}: no {split} split')
  layer = transform.transform_features_layer()
  # Traced, so the graph runs only what the image needs, as in serving (the
  # mask's decoding would fail on the missing mask input).
  transform_images = tf.function(
      lambda encoded: layer({features.IMAGE_KEY: tf.reshape(encoded, [-1, 1])})[features.IMAGE_XF])
  images = np.concatenate([transform_images(tf.constant(read.images[i:i + _BATCH])).numpy()
                           for i in range(0, len(read.images), _BATCH)])
  return network.score(images, read.labels, np.array([''] * len(read.labels)))


class MahalanobisModel:
  """Class means and a shared covariance in the train features' leading components."""

  def __init__(self, train: Scored, components: int = MAHALANOBIS_COMPONENTS):
    self._mean = train.penultimate.mean(axis=0)
    centred = train.penultimate - self._mean
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    self._basis = vt[:components].T
    projected = centred @ self._basis
    classes = np.unique(train.labels)
    self._class_means = np.stack([projected[train.labels == c].mean(axis=0)
                                  for c in classes])
    within = projected - self._class_means[np.searchsorted(classes, train.labels)]
    self._precision = covariance.LedoitWolf(assume_centered=True).fit(within).precision_

  def distance(self, scored: Scored) -> np.ndarray:
    projected = (scored.penultimate - self._mean) @ self._basis
    diffs = projected[:, None, :] - self._class_means[None]
    squared = np.einsum('ncd,de,nce->nc', diffs, self._precision, diffs)
    return np.sqrt(np.maximum(squared.min(axis=1), 0.0))


def _js_divergence(logits_a: np.ndarray, logits_b: np.ndarray) -> np.ndarray:
  p, q = special.softmax(logits_a, axis=1), special.softmax(logits_b, axis=1)
  m = (p + q) / 2
  return 0.5 * (special.rel_entr(p, m).sum(axis=1) + special.rel_entr(q, m).sum(axis=1))


def decisions(probs: np.ndarray, malignant: int, threshold: float) -> np.ndarray:
  """The class each served decision stands for (models/signatures.py's rule)."""
  others = probs.copy()
  others[:, malignant] = -1.0
  return np.where(probs[:, malignant] >= threshold, malignant, others.argmax(axis=1))


def signals(scored: Scored, temperature: float, malignant: int, threshold: float,
            mahalanobis: MahalanobisModel) -> Dict[str, np.ndarray]:
  """Every candidate signal per scan, higher = less sure."""
  probs = special.softmax(scored.logits / temperature, axis=1)
  malignant_logit = special.logit(np.clip(probs[:, malignant], 1e-12, 1 - 1e-12))
  return {
      'max_probability': not_sure.unsureness(probs),
      'energy': -special.logsumexp(scored.logits, axis=1),
      'mahalanobis': mahalanobis.distance(scored),
      'view_disagreement': _js_divergence(scored.view_logits['context'],
                                          scored.view_logits['lesion']),
      'threshold_margin': -np.abs(malignant_logit - special.logit(threshold)),
  }


def _auroc_interval(wrong: np.ndarray, signal: np.ndarray, seed: int = 0):
  """AUROC of error detection and its percentile bootstrap 95% interval."""
  if wrong.all() or not wrong.any():
    return None, None, None
  auroc = float(metrics.roc_auc_score(wrong, signal))
  rng = np.random.default_rng(seed)
  draws = []
  for _ in range(BOOTSTRAP_DRAWS):
    pick = rng.integers(0, len(wrong), len(wrong))
    if wrong[pick].any() and not wrong[pick].all():
      draws.append(metrics.roc_auc_score(wrong[pick], signal[pick]))
  return auroc, float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def site_row(name: str, wrong: np.ndarray, values: Dict[str, np.ndarray],
             cutoffs: Dict[str, float]) -> dict:
  """One site's figures for every signal."""
  row = {'site': name, 'n': int(wrong.size), 'wrong': int(wrong.sum()), 'signals': {}}
  for signal, value in values.items():
    fires = value >= cutoffs[signal]
    auroc, lower, upper = _auroc_interval(wrong, value)
    row['signals'][signal] = {
        'fires': int(fires.sum()), 'fire_rate': float(fires.mean()),
        'auroc': auroc, 'auroc_ci95': [lower, upper],
        # Of the wrong decisions, how many the flag catches; and how wrong the
        # flagged and the unflagged scans are.
        'errors_caught': int((fires & wrong).sum()),
        'error_rate_flagged': float(wrong[fires].mean()) if fires.any() else None,
        'error_rate_unflagged': float(wrong[~fires].mean()) if (~fires).any() else None,
    }
  return row


def _table(rows: List[dict]) -> str:
  lines = ['| site | n | wrong | ' + ' | '.join(SIGNALS) + ' |',
           '|---|---:|---:|' + '---:|' * len(SIGNALS)]
  for row in rows:
    cells = []
    for signal in SIGNALS:
      s = row['signals'][signal]
      auroc = 'n/a' if s['auroc'] is None else f'{s["auroc"]:.2f}'
      cells.append(f'{auroc} / {s["fire_rate"]:.0%}')
    lines.append(f'| {row["site"]} | {row["n"]} | {row["wrong"]} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--pipeline-root', default='outputs',
                      help='a finished pipeline run (the folder holding tfx/)')
  parser.add_argument('--bus-bra', default='', help='BUS-BRA root (default: the shared copy)')
  parser.add_argument('--flag-fraction', type=float, default=not_sure.FLAG_FRACTION,
                      help='share of the eval split each signal flags')
  parser.add_argument('--bus-bra-limit', type=int, default=0,
                      help='score only the first N BUS-BRA scans (0: all)')
  parser.add_argument('--out', default=_RESULTS)
  args = parser.parse_args(argv)
  if not 0.0 < args.flag_fraction < 1.0:
    print(f'not_sure: --flag-fraction must be between 0 and 1, got {args.flag_fraction}',
          file=sys.stderr)
    return 2
  started = time.time()
  class_names = list(features.CLASS_NAMES)
  malignant = class_names.index(features.MALIGNANT_CLASS)
  try:
    run = find_run(args.pipeline_root)
    transform = tft.TFTransformOutput(run.transform_graph_dir)
    image_size = transform.transformed_feature_spec()[features.IMAGE_XF].shape[0]
    network = Network(run, class_names, image_size)
    scored = {split: _busi_split(run, split, class_names, transform, network)
              for split in ('train', 'eval', 'test')}
    bus_bra_root = cross_site.find_root(args.bus_bra)
    if not bus_bra_root:
      print('not_sure: no BUS-BRA manifest found (--bus-bra); BUSI only', file=sys.stderr)
    else:
      site = cross_site.load(bus_bra_root, image_size, class_names, args.bus_bra_limit)
      scored['bus_bra'] = network.score(site.images, site.labels, site.devices)
  except ValueError as e:
    print(f'not_sure: {e}', file=sys.stderr)
    return 1
  mismatch = _served_mismatch(run, scored['eval'])
  if mismatch > 1e-4:
    print(f'not_sure: the rebuilt network\'s scores differ from the export\'s by '
          f'{mismatch:.2g}; its figures would not be the served model\'s', file=sys.stderr)
    return 1
  mahalanobis = MahalanobisModel(scored['train'])
  values, wrong = {}, {}
  for name, s in scored.items():
    values[name] = signals(s, run.temperature, malignant, run.malignant_threshold, mahalanobis)
    probs = special.softmax(s.logits / run.temperature, axis=1)
    wrong[name] = decisions(probs, malignant, run.malignant_threshold) != s.labels
  cutoffs = {signal: not_sure.cutoff_flagging(values['eval'][signal], args.flag_fraction)
             for signal in SIGNALS}
  rows = [site_row('busi_eval', wrong['eval'], values['eval'], cutoffs),
          site_row('busi_test', wrong['test'], values['test'], cutoffs)]
  if 'bus_bra' in scored:
    rows.append(site_row('bus_bra', wrong['bus_bra'], values['bus_bra'], cutoffs))
    devices = scored['bus_bra'].groups
    for device in sorted(set(devices)):
      pick = devices == device
      rows.append(site_row(f'bus_bra {device}', wrong['bus_bra'][pick],
                           {k: v[pick] for k, v in values['bus_bra'].items()}, cutoffs))
  eval_auroc = {signal: rows[0]['signals'][signal]['auroc'] or 0.0 for signal in SIGNALS}
  chosen = max(SIGNALS, key=eval_auroc.get)
  test_auroc = rows[1]['signals'][chosen]['auroc']
  result = {
      'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='minutes'),
      'command': 'make bench-not-sure ARGS="' + ' '.join(argv or sys.argv[1:]) + '"',
      'saved_model_dir': run.saved_model_dir, 'temperature': run.temperature,
      'malignant_threshold': run.malignant_threshold,
      'flag_fraction_of_eval': args.flag_fraction, 'cutoffs': cutoffs,
      'mahalanobis_components': MAHALANOBIS_COMPONENTS,
      'chosen_on_eval': chosen, 'chosen_busi_test_auroc': test_auroc,
      'ship': bool(test_auroc is not None and test_auroc >= SHIP_AUROC),
      'ship_auroc': SHIP_AUROC, 'rows': rows,
      'load_average': list(os.getloadavg()), 'seconds': round(time.time() - started, 1),
  }
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, 'w') as f:
    json.dump(result, f, indent=1)
  print('AUROC of error detection / share flagged (cut-offs flag '
        f'{args.flag_fraction:.0%} of eval), at the operating point '
        f'(threshold {run.malignant_threshold:.4f}):')
  print(_table(rows))
  print(f'chosen on eval: {chosen}; BUSI test AUROC {test_auroc}; '
        f'{"ship" if result["ship"] else "do not ship"} (bar {SHIP_AUROC}); wrote {args.out}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
