"""A second hospital's scans as a test set for a model trained on BUSI.

BUS-BRA (../shared/data/bus_bra, its README) has benign and malignant scans
only, from four scanners: how a BUSI-trained model ranks them tells whether it
learnt the lesion or BUSI's site. The scans are decoded as the Transform
decodes BUSI's, and scored with the served decision (the argmax over all the
model's classes, so a lesion called "normal" counts as missed).
"""

import dataclasses
import os
from typing import Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

from bench import classification_metrics
from contracts import configs
from contracts import features
from dataset import manifest
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
