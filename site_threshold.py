"""Sets a new site's malignant threshold from its first labelled export, for the served model.

    python site_threshold.py --site NAME --data-root NAME=PATH
        [--manifest-columns NAME=PRESET|FILE.json] [--model-dir DIR]
        [--target-sensitivity F] [--replace] [--adapt [--adapted-model-dir DIR]]

A threshold chosen on one hospital's scans need not hold at another, so a new
site scores its own labelled scans (class folders, or a manifest as
`--manifest-columns` reads it, as `make run` would) with the served model's
`serving_images` signature, the graph TF Serving runs, and chooses its
threshold by the Trainer's rule (models/operating_point.py) for the served
model's own target sensitivity unless told another. The threshold, the
sensitivity and specificity with their 95% Clopper-Pearson intervals and the
lower bound go into the version's site table
(`assets.extra/site_operating_points.json`), which `predict --site NAME`
applies to the served scores (docs/serving.md). A site already in the table
is replaced only with `--replace`, and the old threshold is printed.

With `--adapt`, the served version is first copied for the site with its
batch-norm statistics re-estimated on the export's scans
(serving/site_adaptation.py), into `outputs/site_models/SITE/MODEL/VERSION`
unless told another folder: the model base folder the site's TF Serving serves.
The threshold is then chosen on the adapted copy's scores, recorded in the
copy, and written into the copy's served decision, before the copy is
published. On a hospital the model never saw this carries it measurably better
than a threshold alone (bench/README.md, "Sites never seen").
"""

import argparse
import dataclasses
import os
import sys
from typing import List, Sequence, Tuple

import numpy as np

import models  # noqa: F401  (selects Keras 2 before TensorFlow loads)
import tensorflow as tf

from contracts import configs
from contracts import features
from contracts import names
from contracts import operating_point as op
from contracts import printable
from contracts import serving
from dataset import manifest
from dataset import sites
from models import operating_point
from orchestration import config_flags
from serving import model_card
from serving import serving_dir
from serving import site_adaptation

DEFAULT_MODEL_DIR = os.path.join('outputs', 'serving_model', names.MODEL_NAME)
SITE_MODELS_DIR = os.path.join('outputs', 'site_models')
_BATCH = 16


class UsageError(Exception):
  """A bad flag, folder, model or scan; the message says which, on one line."""


def _site(args: argparse.Namespace) -> configs.Site:
  try:
    parsed = config_flags.build_sites(args.data_root, args.manifest_columns)
  except config_flags.SiteSpecError as e:
    raise UsageError(str(e)) from None
  named = [site for site in parsed if site.name == args.site]
  if not named:
    raise UsageError(f'--site {args.site}: no --data-root names it (give '
                     f'--data-root {args.site}=PATH)')
  return named[0]


def labelled_scans(site: configs.Site, class_names: Sequence[str]
                   ) -> List[Tuple[str, int]]:
  """(path, class index) of every scan of the site, read as ImageExampleGen reads it.

  The threshold is for the whole export, so a scan the pipeline would leave
  out stops the program rather than being dropped.
  """
  problem = sites.layout_problem(site, class_names)
  if problem:
    raise UsageError(f'site {site.name}: {problem}')
  try:
    scan = sites.scan(site, class_names)
  except (manifest.ManifestError, FileNotFoundError) as e:
    raise UsageError(f'site {site.name}: {e}') from None
  if scan.quarantined:
    first = scan.quarantined[0]
    raise UsageError(f'site {site.name}: {len(scan.quarantined)} scan(s) cannot be '
                     f'used, first {first.file}: {first.reason}')
  index = {name: k for k, name in enumerate(class_names)}
  return [(os.path.join(site.root, f.relpath), index[f.label]) for f in scan.images]


def _served_version(model_dir: str) -> str:
  """The version folder: `model_dir` itself, or the one served as stable below it."""
  try:
    return serving_dir.version_to_read(model_dir)
  except ValueError as e:
    raise UsageError(f'--model-dir {model_dir}: {e}') from None


def malignant_scores(version_dir: str, paths: Sequence[str]) -> np.ndarray:
  """The calibrated malignant score of each scan, from `serving_images`."""
  signature = tf.saved_model.load(version_dir).signatures[serving.SERVING_IMAGES]
  scores = []
  for start in range(0, len(paths), _BATCH):
    batch = paths[start:start + _BATCH]
    try:
      outputs = signature(**{serving.IMAGE_BYTES_INPUT: tf.constant(
          [tf.io.gfile.GFile(path, 'rb').read() for path in batch])})
    except tf.errors.InvalidArgumentError as e:
      raise UsageError(f'the model refused a scan among {", ".join(batch)}: '
                       f'{printable.tf_error_reason(e.message)}') from None
    classes = [name.decode() for name in outputs[serving.CLASSES_OUTPUT].numpy()[0]]
    scores.append(outputs[serving.SCORES_OUTPUT].numpy()[
        :, classes.index(features.MALIGNANT_CLASS)])
  return np.concatenate(scores)


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(prog='site_threshold',
                                   description=__doc__.split('\n')[0])
  parser.add_argument('--site', required=True, help='the site whose threshold to set')
  parser.add_argument(config_flags.DATA_ROOT_FLAG, dest='data_root', action='append',
                      required=True, metavar='NAME=PATH',
                      help="the site's labelled export, as `make run` reads it")
  parser.add_argument(config_flags.COLUMNS_FLAG, dest='manifest_columns',
                      action='append', default=[], metavar='NAME=PRESET|FILE.json',
                      help="how the site's manifest names its columns")
  parser.add_argument('--model-dir', default=DEFAULT_MODEL_DIR,
                      help='a pushed version folder, or the base folder whose stable '
                           'version is used (default: %(default)s)')
  parser.add_argument('--target-sensitivity', type=float, default=None,
                      help="default: the served model's own target")
  parser.add_argument('--replace', action='store_true',
                      help='replace the site\'s threshold (with --adapt: its adapted '
                           'version) if it already has one')
  parser.add_argument('--adapt', action='store_true',
                      help="first adapt a copy of the served version to the site's scans "
                           '(batch-norm statistics), and set the threshold for the copy')
  parser.add_argument('--adapted-model-dir', default=None,
                      help=f'the adapted version folder (default: {SITE_MODELS_DIR}/SITE/'
                           f'{names.MODEL_NAME}/VERSION)')
  args = parser.parse_args(argv)
  if args.adapted_model_dir and not args.adapt:
    parser.error('--adapted-model-dir needs --adapt')
  return args


def _adapted(site: configs.Site, version_dir: str, folder: str, target: float,
             replace: bool) -> site_adaptation.AdaptedVersion:
  """The served version adapted to the site's scans and threshold, written to `folder`.

  A copy adapted before is replaced, with `replace`, only once the new one is
  written.
  """
  existed = os.path.exists(folder)
  if existed and not replace:
    raise UsageError(f'{folder} exists already (site {site.name} was adapted before); '
                     'give --replace to adapt it again')
  paths = [path for path, _ in labelled_scans(site, list(features.CLASS_NAMES))]
  print(f'site {site.name}: adapting {version_dir} to {len(paths)} scans',
        file=sys.stderr, flush=True)
  try:
    adapted = site_adaptation.adapt_version(
        version_dir, site.name, paths, folder,
        lambda staged: site_point(site, staged, target, shown_as='the adapted copy'),
        replace=replace)
  except ValueError as e:
    raise UsageError(f'{version_dir} cannot be adapted: {e}') from None
  if existed:
    print(f'replaced: {folder}', file=sys.stderr)
  return adapted


def site_point(site: configs.Site, version_dir: str, target: float,
               shown_as: str = '') -> op.OperatingPoint:
  """The site's operating point for the version's scores of its labelled scans."""
  class_names = list(features.CLASS_NAMES)
  scans = labelled_scans(site, class_names)
  malignant = class_names.index(features.MALIGNANT_CLASS)
  is_malignant = np.array([label == malignant for _, label in scans], bool)
  if not is_malignant.any():
    raise UsageError(f'site {site.name}: no malignant scan, so no sensitivity can be '
                     'shown; label the cancers of the export first')
  print(f'site {site.name}: scoring {len(scans)} scans ({int(is_malignant.sum())} '
        f'malignant) with {shown_as or version_dir}', file=sys.stderr, flush=True)
  scores = malignant_scores(version_dir, [path for path, _ in scans])
  return dataclasses.replace(operating_point.choose(scores, is_malignant, target),
                             split=op.SITE_EXPORT_SPLIT, site=site.name)


def _update_card(version_dir: str) -> None:
  """Lists the version's site thresholds, as now recorded, in its model card."""
  try:
    card = model_card.read_card(version_dir)
  except model_card.DamagedCardError as e:
    print(f'note: the model card was not updated: {e}', file=sys.stderr)
    return
  if card is not None:
    model_card.write_card(version_dir, dataclasses.replace(card, site_thresholds={
        name: point.threshold
        for name, point in operating_point.read_sites(version_dir).items()}))


def main(argv: Sequence[str]) -> int:
  args = _parse_args(argv)
  try:
    site = _site(args)
    version_dir = _served_version(args.model_dir)
    served = operating_point.read(version_dir)
    target = (args.target_sensitivity if args.target_sensitivity is not None
              else served.target_sensitivity if served
              else configs.TrainingConfig().target_malignant_sensitivity)
    if not 0.0 < target <= 1.0:
      raise UsageError(f'--target-sensitivity must be above 0 and at most 1, got {target}')
    if args.adapt:
      folder = args.adapted_model_dir or os.path.join(
          SITE_MODELS_DIR, site.name, names.MODEL_NAME,
          os.path.basename(os.path.normpath(version_dir)))
      adapted = _adapted(site, version_dir, folder, target, args.replace)
      print(f'{adapted.version_dir}: adapted to site {site.name} '
            f'({adapted.batch_norm_layers} batch-norm layers, {adapted.scans} scans), '
            'deciding at its threshold')
      version_dir, point, replaced = adapted.version_dir, adapted.point, None
    else:
      existing = operating_point.read_sites(version_dir).get(site.name)
      if existing and not args.replace:
        raise UsageError(f'site {site.name} already has a threshold in {version_dir} '
                         f'({existing.summary_line()}); give --replace to replace it')
      point = site_point(site, version_dir, target)
      replaced = operating_point.write_site(version_dir, point, replace=args.replace)
      _update_card(version_dir)
  except (UsageError, operating_point.SiteRecordedError) as e:
    print(f'site_threshold: error: {e}', file=sys.stderr)
    return 2
  print(f'{operating_point.sites_path_in(version_dir)}: {point.summary_line()}')
  if replaced is not None:
    print(f'replaced: {replaced.summary_line()}')
  fewest = operating_point.fewest_malignant_to_show(target)
  if not point.target_bound_met:
    print(f'note: the bound falls short of {target:.2f}: '
          + (f'it can reach it only with at least {fewest} malignant scans, all referred'
             if fewest else 'no sample can show a sensitivity of 1'), file=sys.stderr)
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
