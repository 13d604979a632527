"""The second-site test set: BUS-BRA's manifest layout, read and scored."""

import csv
import os

import numpy as np
import pytest
from PIL import Image

from bench import cross_site
from contracts import features
from tests.fixtures import synthetic_busi

CLASS_NAMES = list(features.CLASS_NAMES)


def write_manifest_site(root: str, pathologies, seed: int = 0) -> str:
  """A BUS-BRA-like folder: bus_data.csv naming Images/<ID>.png."""
  rng = np.random.default_rng(seed)
  os.makedirs(os.path.join(root, 'Images'))
  with open(os.path.join(root, cross_site.MANIFEST), 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['ID', 'Case', 'Pathology', 'Device'])
    for n, pathology in enumerate(pathologies):
      image, _ = synthetic_busi.make_image(pathology, rng)
      Image.fromarray(image).save(os.path.join(root, 'Images', f'bus_{n:04d}-s.png'))
      writer.writerow([f'bus_{n:04d}-s', n, pathology, 'scanner A'])
  return root


def test_reads_every_listed_scan_with_its_class_and_scanner(tmp_path):
  root = write_manifest_site(str(tmp_path / 'site'), ['benign', 'malignant', 'benign'])
  site = cross_site.load(root, 32, CLASS_NAMES)
  assert site.images.shape == (3, 32, 32, 1)
  assert 0.0 <= site.images.min() and site.images.max() <= 1.0
  assert [CLASS_NAMES[i] for i in site.labels] == ['benign', 'malignant', 'benign']
  assert list(site.devices) == ['scanner A'] * 3


def test_a_pathology_outside_the_classes_is_named(tmp_path):
  root = write_manifest_site(str(tmp_path / 'site'), ['benign', 'borderline'])
  with pytest.raises(ValueError, match="label 'borderline' .* is not a known class"):
    cross_site.load(root, 32, CLASS_NAMES)


def test_scores_rank_benign_against_malignant_and_count_normal_calls_as_missed():
  benign, malignant, normal = (CLASS_NAMES.index(c) for c in ('benign', 'malignant', 'normal'))
  site = cross_site.SiteImages(np.zeros((4, 1, 1, 1), np.float32),
                               np.array([benign, benign, malignant, malignant]),
                               np.array(['a'] * 4))
  probs = np.zeros((4, 3))
  probs[0, [benign, malignant]] = 0.9, 0.1
  probs[1, [benign, malignant]] = 0.6, 0.4
  probs[2, [malignant, benign]] = 0.8, 0.2
  probs[3, [normal, malignant, benign]] = 0.5, 0.45, 0.05
  scores = cross_site.score(site, probs, CLASS_NAMES)
  assert scores.images == 4
  assert scores.benign_vs_malignant_auc == 1.0
  assert scores.malignant_sensitivity == 0.5      # the "normal" call misses
  assert scores.malignant_specificity == 1.0


def test_find_root_needs_the_manifest(tmp_path):
  assert cross_site.find_root(str(tmp_path)) is None
  root = write_manifest_site(str(tmp_path / 'site'), ['benign'])
  assert cross_site.find_root(root) == root
