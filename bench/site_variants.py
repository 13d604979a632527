"""What carries a model to a site it never saw: training variants, and test-time adaptation.

Each variant of the default lesion_net is trained by the Trainer's own code on
one site's pipeline training split (BUSI by default), its operating point
chosen on that site's eval split, then scored on a site it never saw
(BUS-BRA's benign and malignant scans). The held-out site is cut in two by
patient: the adaptation half is its "first labelled export" (what a new site
would have), the test half is only scored. Nothing is chosen on the test half:

- a training variant is chosen on the training site's eval split (its
  benign-vs-malignant AUC there);
- test-time adaptation of the batch-norm statistics is chosen on the
  adaptation half, whose images (never their labels) it adapts to;
- the site's own threshold is set on the adaptation half's labelled scans,
  as `make operating-point` sets it from a first export.

The variants are those known to carry across scanners:

- `lesion_net`: the shipped model, the control;
- `image_norm`: every image standardised to the training split's average
  brightness and contrast, at training and at test (the Transform would do it);
- `full_res_crop`: the lesion crop read at the input's full side (256 px)
  instead of the whole-image pass's 128 px, so the lesion is seen at twice the
  detail;

and each is scored as trained and with its batch-norm statistics re-estimated
on the adaptation half's images (`+adapted`).

  make bench-site-variants
  python bench/site_variants.py --variants lesion_net,image_norm --epochs 30
"""

import argparse
import dataclasses
import datetime
import hashlib
import os
import shlex
import sys
import time
from typing import Callable, Dict, List, Sequence

import numpy as np

import models  # noqa: F401  (selects Keras 2 before TensorFlow loads)

from bench import busi_arrays
from bench import cross_site
from bench import results_file
from blessing import radiologist_comparison
from contracts import configs
from contracts import features
from dataset import data_root
from models import batch_norm_adaptation
from models import lesion_net
from models import model as model_lib
from models import not_sure
from models import operating_point
from models import registry
from models import training_loop

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')
_BASE = 'lesion_net'
_FULL_RES_CROP = 'lesion_net_full_res_crop'


def _build_full_res_crop(config: configs.ModelConfig, num_classes: int):
  net = lesion_net.build_lesion_net(
      config.image_size, num_classes, model_lib.CLASS_OUTPUT, model_lib.MASK_OUTPUT,
      context_size=min(config.image_size, lesion_net.MAX_CONTEXT_SIZE),
      crop_size=config.image_size, dropout=config.dropout)
  return net.training, net.serving


@dataclasses.dataclass(frozen=True)
class Standardisation:
  """Maps each image to a target mean and standard deviation of its grey levels."""
  mean: float
  std: float

  @classmethod
  def of(cls, images: np.ndarray) -> 'Standardisation':
    """The average image's brightness and contrast in `images`."""
    return cls(float(images.mean(axis=(1, 2, 3)).mean()),
               float(images.std(axis=(1, 2, 3)).mean()))

  def __call__(self, images: np.ndarray) -> np.ndarray:
    mean = images.mean(axis=(1, 2, 3), keepdims=True)
    std = np.maximum(images.std(axis=(1, 2, 3), keepdims=True), 1e-3)
    return np.clip(self.mean + (images - mean) / std * self.std, 0.0, 1.0).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Variant:
  """A training variant: the family it trains and what it does to the images."""
  name: str
  model: str
  standardises: bool = False


VARIANTS: Dict[str, Variant] = {v.name: v for v in (
    Variant('lesion_net', _BASE),
    Variant('image_norm', _BASE, standardises=True),
    Variant('full_res_crop', _FULL_RES_CROP),
)}


@dataclasses.dataclass(frozen=True)
class VariantResult:
  """One variant as trained (and adapted) and scored."""
  variant: str
  adapted: bool
  train_seconds: float
  threshold: float
  # The choice: benign-vs-malignant AUC on the training site's eval split,
  # and (for adaptation) on the held-out site's adaptation half.
  eval_auc: float
  adaptation_half_auc: float
  test_half: cross_site.TransferRow
  # The test half at the site's own threshold, set on the adaptation half's
  # labelled scans by the Trainer's rule, as `make operating-point` sets it.
  test_half_at_site_threshold: cross_site.TransferRow
  # Scans of the test half flagged "not sure" at the eval split's cut-off.
  not_sure_rate: float


def patient_halves(files: Sequence) -> np.ndarray:
  """True for the adaptation half: each patient (or image, where none is given)
  falls in one half by a hash of its id, the same on every run."""
  keys = [f.patient_id or f.relpath for f in files]
  return np.array([hashlib.sha256(k.encode()).digest()[0] % 2 == 0 for k in keys])


def _pair_auc(scores: np.ndarray, labels: np.ndarray, class_names: Sequence[str]) -> float:
  """Benign-vs-malignant AUC of class probabilities, normal scans left out."""
  m, b = class_names.index(features.MALIGNANT_CLASS), class_names.index('benign')
  kept = (labels == m) | (labels == b)
  return radiologist_comparison.auc(cross_site.malignancy_scores(scores[kept], class_names),
                                    labels[kept] == m)


def _score_variant(name: str, adapted: bool, train_seconds: float,
                   result: training_loop.TrainResult, target_sensitivity: float,
                   eval_scores: np.ndarray, eval_labels: np.ndarray,
                   held_out: Dict[str, np.ndarray], files: Dict[str, list], site: str,
                   trained_on: str, class_names: Sequence[str]) -> VariantResult:
  threshold = result.operating_point.threshold
  scores = {half: result.scores(images) for half, images in held_out.items()}
  adapt_labels = np.array([class_names.index(f.label) for f in files['adapt']])
  malignant = class_names.index(features.MALIGNANT_CLASS)
  site_point = operating_point.choose(scores['adapt'][:, malignant],
                                      adapt_labels == malignant, target_sensitivity)
  flagged = not_sure.unsureness(scores['test']) >= result.not_sure_cutoff
  return VariantResult(
      name, adapted, train_seconds, threshold,
      _pair_auc(eval_scores, eval_labels, class_names),
      _pair_auc(scores['adapt'], adapt_labels, class_names),
      cross_site.transfer_row(trained_on, site, 'test half', threshold, files['test'],
                              scores['test'], class_names),
      cross_site.transfer_row(trained_on, site, 'test half, site threshold',
                              site_point.threshold, files['test'], scores['test'],
                              class_names),
      float(flagged.mean()))


def _markdown(results: List[VariantResult]) -> str:
  lines = ['| variant | eval split B/M AUC (choice) | adaptation half AUC | test half AUC '
           '| sensitivity | specificity | at the site\'s threshold: sensitivity '
           '| specificity | not sure | BI-RADS AUC | train s |',
           '|---|---|---|---|---|---|---|---|---|---|---|']
  for r in results:
    o, at_site = r.test_half.overall, r.test_half_at_site_threshold.overall
    birads = r.test_half.radiologist.birads_auc if r.test_half.radiologist else None
    lines.append(
        f'| {r.variant}{" +adapted" if r.adapted else ""} | {r.eval_auc:.3f} '
        f'| {r.adaptation_half_auc:.3f} | {o.benign_vs_malignant_auc:.3f} '
        f'| {cross_site.proportion_text(o.sensitivity)} '
        f'| {cross_site.proportion_text(o.specificity)} '
        f'| {cross_site.proportion_text(at_site.sensitivity)} '
        f'| {cross_site.proportion_text(at_site.specificity)} '
        f'| {r.not_sure_rate:.3f} | {"" if birads is None else f"{birads:.3f}"} '
        f'| {r.train_seconds:.0f} |')
  return '\n'.join(lines)


def run_variant(variant: Variant, model_config: configs.ModelConfig,
                training_config: configs.TrainingConfig, class_names: Sequence[str],
                data: busi_arrays.TransformedImages, split: Dict[str, np.ndarray],
                held_out: Dict[str, np.ndarray], files: Dict[str, list],
                site: str, trained_on: str,
                log: Callable[[str], None] = print) -> List[VariantResult]:
  """Trains one variant and scores it as trained and adapted."""
  if variant.standardises:
    standardise = Standardisation.of(data.images[split['train']])
    data = dataclasses.replace(data, images=standardise(data.images))
    held_out = {half: standardise(images) for half, images in held_out.items()}
  config = dataclasses.replace(model_config, name=variant.model)
  start = time.monotonic()
  result = training_loop.train(config, training_config, class_names,
                               data.subset(split['train']).dataset(),
                               data.subset(split['eval']).dataset())
  seconds = time.monotonic() - start
  log(f'{variant.name}: trained in {seconds:.0f} s, {result.epochs_run} epochs')
  eval_images, eval_labels = data.images[split['eval']], data.labels[split['eval']]
  rows = []
  for adapted in (False, True):
    if adapted:
      batch_norm_adaptation.adapt(result.serving_model, held_out['adapt'])
    rows.append(_score_variant(variant.name, adapted, seconds, result,
                               training_config.target_malignant_sensitivity,
                               result.scores(eval_images), eval_labels, held_out, files,
                               site, trained_on, class_names))
    log(_markdown(rows[-1:]).splitlines()[-1])
  return rows


def main(argv: Sequence[str]) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--train-site', metavar='NAME=PATH',
                      help='default: busi=BUSI as `make run` finds it')
  parser.add_argument('--test-site', metavar='NAME=PATH',
                      help='default: bus_bra=../shared/data/bus_bra')
  parser.add_argument('--variants', default=','.join(VARIANTS),
                      help=f'comma-separated, from {", ".join(VARIANTS)}')
  parser.add_argument('--epochs', type=int, default=None,
                      help='default: lesion_net\'s own (30)')
  parser.add_argument('--image-size', type=int, default=registry.spec(_BASE).image_size,
                      help='the input side (default: lesion_net\'s own, 256)')
  parser.add_argument('--output', default=os.path.join(RESULTS_DIR, 'site_variants.json'))
  args = parser.parse_args(argv)
  chosen = [v.strip() for v in args.variants.split(',') if v.strip()]
  unknown = sorted(set(chosen) - set(VARIANTS))
  if unknown or not chosen:
    parser.error(f'--variants: unknown {", ".join(unknown) or "(none given)"}; '
                 f'choose from {", ".join(VARIANTS)}')
  busi_root = data_root.find_data_root('')
  if not args.train_site and busi_root is None:
    parser.error(f'no BUSI found ({", ".join(data_root.DEFAULT_DIRS)}): pass --train-site')
  train_site = cross_site.site_flag(args.train_site or f'busi={busi_root}', '--train-site',
                                    parser)
  test_site = cross_site.site_flag(args.test_site or f'bus_bra={cross_site.DEFAULT_ROOT}',
                                   '--test-site', parser)
  base = registry.spec(_BASE)
  epochs = args.epochs or base.epochs
  if epochs < 1:
    parser.error(f'--epochs must be at least 1, got {epochs}')
  if args.image_size % base.image_size_multiple:
    parser.error(f'--image-size must be a multiple of {base.image_size_multiple}')
  registry.register(dataclasses.replace(base, name=_FULL_RES_CROP, build=_build_full_res_crop))
  model_config = configs.ModelConfig(name=_BASE, image_size=args.image_size)
  training_config = dataclasses.replace(configs.TrainingConfig(), epochs=epochs)
  data_config = configs.DataConfig()
  class_names = list(data_config.class_names)
  try:
    data, split = busi_arrays.load_site(train_site, data_config, args.image_size)
    site_files = cross_site.site_files(test_site.root, class_names)
  except ValueError as e:
    raise SystemExit(f'bench/site_variants.py: {e}') from None
  in_adaptation_half = patient_halves(site_files)
  files = {'adapt': [f for f, a in zip(site_files, in_adaptation_half) if a],
           'test': [f for f, a in zip(site_files, in_adaptation_half) if not a]}
  held_out = {half: cross_site.decode(test_site.root, fs, args.image_size)
              for half, fs in files.items()}
  print(f'{train_site.name}: ' + ', '.join(f'{k} {v.size}' for k, v in split.items())
        + f'; {test_site.name}: adaptation half {len(files["adapt"])}, '
        f'test half {len(files["test"])}', flush=True)
  results = []
  for name in chosen:
    results += run_variant(VARIANTS[name], model_config, training_config, class_names,
                           data, split, held_out, files, test_site.name, train_site.name,
                           log=lambda line: print(line, flush=True))
  table = _markdown(results)
  print(table)
  results_file.write({
      'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
      'command': ' '.join(['python bench/site_variants.py', *map(shlex.quote, argv)]),
      'training_config': dataclasses.asdict(training_config),
      'split_sizes': {k: int(v.size) for k, v in split.items()},
      'held_out_halves': {half: len(fs) for half, fs in files.items()},
      'results': [cross_site.plain(dataclasses.asdict(r)) for r in results],
      'table': table,
  }, args.output)
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
