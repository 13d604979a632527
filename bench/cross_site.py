"""A site the model was not trained on (or a site's own test split) as a test set.

BUS-BRA (../shared/data/bus_bra, its README) has benign and malignant scans
only, from four scanners: how a BUSI-trained model ranks them tells whether it
learnt the lesion or BUSI's site. `load` and `score` serve bench/quality.py's
in-memory models: the scans are decoded as the Transform decodes BUSI's, and
scored with the argmax over all the model's classes, so a lesion called
"normal" counts as missed.

Run as a program, it scores an exported model (the Trainer's SavedModel,
through its image-bytes signature, as a client would) on a site's benign and
malignant scans, all of them or one split of the site as ImageExampleGen
splits it, and writes the leave-one-site-out row: benign-vs-malignant AUC,
sensitivity and specificity at the model's own operating point (the threshold
the Trainer chose on its eval split), per scanner, and, where the site's
manifest gives BI-RADS, the radiologist on the same scans
(blessing/radiologist_comparison.py). With `--site-threshold-from eval` it
also scores at a threshold chosen for the site on its own eval split, the way
a new site would set its operating point from its first labelled export,
never from the scans it is scored on:

  python bench/cross_site.py --model TRAINER_MODEL_DIR --trained-on busi \
      --site bus_bra=../shared/data/bus_bra --output bench/results/cross_site_busi.json
"""

import argparse
import dataclasses
import datetime
import math
import os
import shlex
import sys
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

import models  # noqa: F401  (selects Keras 2 before TensorFlow loads)
import tensorflow as tf

from bench import busi_arrays
from bench import classification_metrics
from bench import results_file
from blessing import radiologist_comparison
from contracts import configs
from contracts import features
from contracts import operating_point as op
from contracts import serving
from dataset import image_files
from dataset import manifest
from models import operating_point
from models import preprocessing

# The site is read as the pipeline reads it with `--manifest-columns bus_bra=bus_bra`.
COLUMNS = configs.MANIFEST_PRESETS['bus_bra']
MANIFEST = COLUMNS.manifest
DEFAULT_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..',
                            'shared', 'data', 'bus_bra')


@dataclasses.dataclass(frozen=True)
class SiteImages:
  """A site's decoded scans, their class indices and scanners."""
  images: np.ndarray     # float32 [n, size, size, 1] in [0, 1]
  labels: np.ndarray     # int64 [n], index into the model's class names
  devices: np.ndarray    # str [n]


@dataclasses.dataclass(frozen=True)
class CrossSiteScores:
  """A model's figures on the other site's scans."""
  images: int
  benign_vs_malignant_auc: float
  malignant_sensitivity: float
  malignant_specificity: float


def find_root(given: str) -> Optional[str]:
  """`given`, else the shared BUS-BRA folder; None when neither holds its manifest."""
  root = given or DEFAULT_ROOT
  return root if os.path.isfile(os.path.join(root, MANIFEST)) else None


def load(root: str, image_size: int, class_names: Sequence[str],
         limit: int = 0) -> SiteImages:
  """BUS-BRA's scans listed in its manifest (the first `limit`; 0: all).

  A listed scan the pipeline would quarantine is an error here, not a drop:
  the figures are for the whole site.
  """
  try:
    scan = manifest.scan_manifest(root, COLUMNS, class_names)
  except manifest.ManifestError as e:
    raise ValueError(str(e)) from None
  if scan.quarantined:
    first = scan.quarantined[0]
    raise ValueError(f'{root}: {len(scan.quarantined)} listed scan(s) cannot be scored, '
                     f'first {first.file}: {first.reason}')
  files = scan.images[:limit] if limit else scan.images
  index = {name: i for i, name in enumerate(class_names)}
  images = [preprocessing.decode_image(tf.io.read_file(os.path.join(root, f.relpath)),
                                       image_size).numpy()
            for f in files]
  return SiteImages(np.stack(images), np.array([index[f.label] for f in files], np.int64),
                    np.array([f.device for f in files]))


def score(site: SiteImages, probs: np.ndarray,
          class_names: Sequence[str]) -> CrossSiteScores:
  """The benign-vs-malignant figures of `probs` (one row per scan) at the site."""
  report: Dict[str, float] = classification_metrics.classification_report(
      site.labels, probs, list(class_names), features.MALIGNANT_CLASS)
  return CrossSiteScores(int(site.labels.size), report['benign_vs_malignant_auc'],
                         report['malignant_sensitivity'],
                         report['malignant_specificity'])


# Images per call of the exported model.
_BATCH = 32
_BENIGN = 'benign'


@dataclasses.dataclass(frozen=True)
class Rates:
  """Benign-vs-malignant figures of one set of scans at the model's operating point."""
  scans: int
  malignant: int
  benign_vs_malignant_auc: Optional[float]   # None with one class
  sensitivity: op.Proportion                 # malignant scans referred
  specificity: op.Proportion                 # benign scans not referred


@dataclasses.dataclass(frozen=True)
class TransferRow:
  """One leave-one-site-out (or in-site) row of the bench."""
  trained_on: str
  tested_on: str
  scans: str                     # 'all', or the split scored (and whose threshold)
  threshold: float               # the malignant threshold the row is scored at
  overall: Rates
  per_device: Dict[str, Rates]
  radiologist: Optional[radiologist_comparison.RadiologistComparison]


def site_flag(text: str, flag: str, parser: argparse.ArgumentParser) -> configs.Site:
  """NAME=PATH, read through BUS-BRA's manifest where the folder holds it."""
  name, _, root = text.partition('=')
  if not root:
    parser.error(f'{flag} takes NAME=PATH, got {text!r}')
  columns = (COLUMNS if os.path.isfile(os.path.join(root, MANIFEST))
             else configs.ManifestColumns())
  try:
    return configs.Site(name, root, columns)
  except configs.ConfigError as e:
    parser.error(f'{flag}: {e}')


def site_files(root: str, class_names: Sequence[str]) -> List[image_files.ImageFile]:
  """The benign and malignant scans of a site: BUS-BRA's manifest, or class folders."""
  if manifest.is_manifest_site(root, COLUMNS):
    scan = manifest.scan_manifest(root, COLUMNS, class_names)
  else:
    scan = image_files.scan_folder(root, class_names)
  return [f for f in scan.images
          if f.label in (features.MALIGNANT_CLASS, _BENIGN)]


def decode(root: str, files: Sequence[image_files.ImageFile], image_size: int) -> np.ndarray:
  """The files' scans as the Transform decodes them: float32 [n, size, size, 1]."""
  return np.stack([preprocessing.decode_image(
      tf.constant(image_files.read_bytes(root, f.relpath)), image_size).numpy()
                   for f in files])


def exported_scores(model_dir: str, root: str,
                    files: Sequence[image_files.ImageFile]) -> np.ndarray:
  """Class probabilities [n, classes] from the exported model's image-bytes signature."""
  serve = tf.saved_model.load(model_dir).signatures[serving.SERVING_IMAGES]
  scores = []
  for start in range(0, len(files), _BATCH):
    payload = [image_files.read_bytes(root, f.relpath) for f in files[start:start + _BATCH]]
    scores.append(serve(**{serving.IMAGE_BYTES_INPUT: tf.constant(payload)})
                  [serving.SCORES_OUTPUT].numpy())
  return np.concatenate(scores)


def rates(is_malignant: np.ndarray, pair_scores: np.ndarray,
          referred: np.ndarray) -> Rates:
  area = radiologist_comparison.auc(pair_scores, is_malignant)
  return Rates(int(is_malignant.size), int(is_malignant.sum()),
               None if math.isnan(area) else area,
               radiologist_comparison.proportion(int(referred[is_malignant].sum()),
                                          int(is_malignant.sum())),
               radiologist_comparison.proportion(int((~referred[~is_malignant]).sum()),
                                          int((~is_malignant).sum())))


def malignancy_scores(probs: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
  """p(malignant | benign or malignant) of class probabilities [n, classes]: what the
  benign-vs-malignant AUC and the comparison with BI-RADS rank."""
  m, b = class_names.index(features.MALIGNANT_CLASS), class_names.index(_BENIGN)
  return probs[:, m] / np.maximum(probs[:, m] + probs[:, b], 1e-12)


def transfer_row(trained_on: str, tested_on: str, scans: str, threshold: float,
                 files: Sequence[image_files.ImageFile], probs: np.ndarray,
                 class_names: Sequence[str]) -> TransferRow:
  """The row for `probs` (one per file); the operating point refers p(malignant) >= threshold.

  The AUC and the comparison with BI-RADS rank the scans by
  p(malignant | benign or malignant): normal is not a pathology here.
  """
  is_malignant = np.array([f.label == features.MALIGNANT_CLASS for f in files])
  pair_scores = malignancy_scores(probs, class_names)
  referred = probs[:, class_names.index(features.MALIGNANT_CLASS)] >= threshold
  devices = np.array([f.device for f in files])
  birads = np.array([np.nan if f.birads is None else f.birads for f in files], float)
  return TransferRow(
      trained_on, tested_on, scans, threshold,
      rates(is_malignant, pair_scores, referred),
      {device: rates(is_malignant[devices == device], pair_scores[devices == device],
                     referred[devices == device])
       for device in sorted(set(devices)) if device},
      radiologist_comparison.compare(is_malignant, pair_scores, birads))


def proportion_text(p: op.Proportion) -> str:
  return 'n/a' if p.estimate is None else f'{p.estimate:.3f} ({p.lower:.2f}-{p.upper:.2f})'


def markdown_rows(row: TransferRow) -> List[str]:
  """Table rows: the whole set, then each scanner."""
  def line(what: str, r: Rates) -> str:
    auc = 'n/a' if r.benign_vs_malignant_auc is None else f'{r.benign_vs_malignant_auc:.3f}'
    return (f'| {row.trained_on} | {what} | {r.scans} ({r.malignant} m) | {auc} | '
            f'{proportion_text(r.sensitivity)} | {proportion_text(r.specificity)} |')
  lines = [line(f'{row.tested_on}, {row.scans}', row.overall)]
  lines += [line(f'{row.tested_on}, {row.scans}, {device}', r)
            for device, r in row.per_device.items()]
  return lines


def radiologist_rows(row: TransferRow) -> List[str]:
  r = row.radiologist
  if r is None:
    return []
  points = '; '.join(f'{p.name}: {proportion_text(p.sensitivity)} / '
                     f'{proportion_text(p.specificity)}'
                     for p in r.birads_points)
  return [f'| {row.trained_on} | {row.tested_on}, {row.scans} | {r.scans} ({r.malignant} m) | '
          f'{r.model_auc:.3f} | {r.birads_auc:.3f} | {points} | '
          f'{proportion_text(r.model_sensitivity_at_biopsy_specificity)} |']


def plain(value: Any) -> Any:
  """JSON-ready: NaN and infinities become None."""
  if isinstance(value, float) and not math.isfinite(value):
    return None
  if isinstance(value, dict):
    return {k: plain(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [plain(v) for v in value]
  return value


def main(argv: Sequence[str]) -> int:
  parser = argparse.ArgumentParser(description='Scores an exported model on a site it '
                                   'was not trained on.')
  parser.add_argument('--model', required=True,
                      help='the Trainer\'s SavedModel (with assets.extra/operating_point.json)')
  parser.add_argument('--trained-on', required=True, help='the row\'s training data, in words')
  parser.add_argument('--site', required=True, metavar='NAME=PATH',
                      help='the site scored: class folders, or BUS-BRA\'s bus_data.csv')
  parser.add_argument('--split', choices=('all', *configs.SplitConfig().as_dict()),
                      default='all', help='score all the site\'s scans, or the split '
                      'ImageExampleGen gives them (default: all)')
  parser.add_argument('--site-threshold-from', choices=tuple(configs.SplitConfig().as_dict()),
                      help='also score at a threshold chosen for this site, as the Trainer '
                           'chooses its own, on this split of the site (e.g. eval with '
                           '--split test: a site\'s first labelled export)')
  parser.add_argument('--output', required=True, help='JSON results file')
  args = parser.parse_args(argv)
  name, _, root = args.site.partition('=')
  if not root:
    parser.error(f'--site takes NAME=PATH, got {args.site!r}')
  if args.site_threshold_from and args.site_threshold_from == args.split:
    parser.error('--site-threshold-from must name another split than --split')
  point = operating_point.read(args.model)
  if point is None:
    parser.error(f'--model {args.model} has no {serving.OPERATING_POINT_FILE}: '
                 'export it with a Trainer that chooses an operating point')
  class_names = list(features.CLASS_NAMES)
  try:
    files = site_files(root, class_names)
    splits = {}
    if args.split != 'all' or args.site_threshold_from:
      site = configs.Site(name, root, COLUMNS if manifest.is_manifest_site(root, COLUMNS)
                          else configs.ManifestColumns())
      planned = busi_arrays.site_split(site, configs.DataConfig())
      splits = {f.relpath: planned.get(f'{name}/{f.relpath}', '') for f in files}
  except (ValueError, manifest.ManifestError, FileNotFoundError) as e:
    raise SystemExit(f'bench/cross_site.py: {e}') from None
  scored = [f for f in files if args.split == 'all' or splits[f.relpath] == args.split]
  if not scored:
    raise SystemExit(f'bench/cross_site.py: no benign or malignant scan of {root} to score')
  scored_paths = {f.relpath for f in scored}
  needed = [f for f in files if f.relpath in scored_paths or (
      args.site_threshold_from and splits[f.relpath] == args.site_threshold_from)]
  by_file = dict(zip((f.relpath for f in needed), exported_scores(args.model, root, needed)))
  scans = 'all' if args.split == 'all' else f'{args.split} split'
  scored_probs = np.stack([by_file[f.relpath] for f in scored])
  rows = [transfer_row(args.trained_on, name, scans, point.threshold, scored, scored_probs,
                       class_names)]
  site_point = None
  if args.site_threshold_from:
    chosen = [f for f in files if splits[f.relpath] == args.site_threshold_from]
    malignant = class_names.index(features.MALIGNANT_CLASS)
    site_point = operating_point.choose(
        np.array([by_file[f.relpath][malignant] for f in chosen]),
        np.array([f.label == features.MALIGNANT_CLASS for f in chosen]),
        configs.TrainingConfig().target_malignant_sensitivity)
    rows.append(transfer_row(
        args.trained_on, name, f'{scans}, threshold from its {args.site_threshold_from} split',
        site_point.threshold, scored, scored_probs, class_names))
  table = '\n'.join([line for row in rows for line in markdown_rows(row)]
                    + radiologist_rows(rows[0]))
  print(table)
  result = {
      'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
      'command': ' '.join(['python bench/cross_site.py', *map(shlex.quote, argv)]),
      'model_operating_point': dataclasses.asdict(point),
      'site_operating_point': site_point and dataclasses.asdict(site_point),
      'rows': [plain(dataclasses.asdict(row)) for row in rows], 'table': table,
  }
  results_file.write(result, args.output)
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
