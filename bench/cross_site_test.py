"""The second-site test set: BUS-BRA's manifest layout, read and scored."""

import csv
import json
import os

import numpy as np
import pytest
from PIL import Image

from bench import busi_arrays
from bench import cross_site
from contracts import configs
from contracts import features
from dataset import image_files
from tests.fixtures import exported_model
from tests.fixtures import synthetic_busi

CLASS_NAMES = list(features.CLASS_NAMES)


def write_manifest_site(root: str, pathologies, seed: int = 0, birads=None,
                        devices=None) -> str:
  """A BUS-BRA-like folder: bus_data.csv naming Images/<ID>.png."""
  rng = np.random.default_rng(seed)
  os.makedirs(os.path.join(root, 'Images'))
  birads = birads or [4] * len(pathologies)
  devices = devices or ['scanner A'] * len(pathologies)
  with open(os.path.join(root, cross_site.MANIFEST), 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['ID', 'Case', 'Pathology', 'BIRADS', 'Device'])
    for n, (pathology, category, device) in enumerate(zip(pathologies, birads, devices)):
      image, _ = synthetic_busi.make_image(pathology, rng)
      Image.fromarray(image).save(os.path.join(root, 'Images', f'bus_{n:04d}-s.png'))
      writer.writerow([f'bus_{n:04d}-s', n, pathology, category, device])
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


def _files(labels, devices, birads):
  return [image_files.ImageFile(f'{n}.png', label, device=device, birads=category)
          for n, (label, device, category) in enumerate(zip(labels, devices, birads))]


def test_a_transfer_row_at_the_operating_point_per_scanner_and_against_birads():
  benign, malignant = CLASS_NAMES.index('benign'), CLASS_NAMES.index('malignant')
  files = _files(['benign', 'benign', 'malignant', 'malignant'], ['A', 'A', 'A', 'B'],
                 [3, 4, 4, None])
  probs = np.zeros((4, 3))
  probs[:, malignant] = [0.1, 0.5, 0.4, 0.3]
  probs[:, benign] = 1 - probs[:, malignant]
  row = cross_site.transfer_row('busi', 'bra', 'all', 0.35, files, probs, CLASS_NAMES)
  # Referred at p(malignant) >= 0.35: the benign 0.5 and the cancer 0.4; not 0.3.
  assert (row.overall.sensitivity.successes, row.overall.sensitivity.total) == (1, 2)
  assert row.overall.specificity.estimate == 0.5
  # Ranking: cancers 0.4 and 0.3 against benign 0.1 and 0.5: 2 of 4 pairs.
  assert row.overall.benign_vs_malignant_auc == 0.5
  assert row.per_device['B'].benign_vs_malignant_auc is None
  assert (row.per_device['A'].scans, row.per_device['B'].malignant) == (3, 1)
  # BI-RADS only on the three scans that have it: the cancer at 4 is found by
  # ">= 4", which also refers one benign scan of two.
  assert row.radiologist.scans == 3
  assert row.radiologist.point(4).specificity.estimate == 0.5
  assert any('| busi | bra, all, B | 1 (1 m) | n/a |' in line
             for line in cross_site.markdown_rows(row))


@pytest.mark.integration
def test_the_program_scores_an_exported_model_on_a_site_and_writes_its_rows(tmp_path):
  pathologies = ['benign', 'malignant'] * 10
  root = write_manifest_site(str(tmp_path / 'site'), pathologies,
                             birads=[3, 5, 2, 4, 4, 5] + [4] * 14, devices=['A', 'B'] * 10)
  model_dir = exported_model.export_untrained_model(
      configs.ModelConfig(name='seed_cnn', image_size=32), str(tmp_path / 'work'),
      str(tmp_path / 'model')).saved_model_dir
  output = str(tmp_path / 'rows.json')
  assert cross_site.main(['--model', model_dir, '--trained-on', 'busi', '--site', f'bra={root}',
                          '--output', output]) == 0
  with open(output) as f:
    everything = json.load(f)
  [row] = everything['rows']
  assert (row['overall']['scans'], row['overall']['malignant']) == (20, 10)
  assert set(row['per_device']) == {'A', 'B'}
  assert row['radiologist']['scans'] == 20
  assert row['threshold'] == everything['model_operating_point']['threshold']
  # The test split, at the model's threshold and at one chosen on the site's eval split.
  assert cross_site.main(['--model', model_dir, '--trained-on', 'busi', '--site', f'bra={root}',
                          '--split', 'test', '--site-threshold-from', 'eval',
                          '--output', output]) == 0
  with open(output) as f:
    split = json.load(f)
  own, site = split['rows']
  planned = busi_arrays.site_split(
      configs.Site('bra', root, cross_site.COLUMNS), configs.DataConfig())
  assert own['overall']['scans'] == site['overall']['scans'] == sum(
      s == 'test' for s in planned.values())
  assert site['scans'] == 'test split, threshold from its eval split'
  assert site['threshold'] == split['site_operating_point']['threshold']


def test_a_threshold_from_the_scored_split_is_refused(tmp_path):
  with pytest.raises(SystemExit):
    cross_site.main(['--model', str(tmp_path), '--trained-on', 'x', '--site', f'x={tmp_path}',
                     '--split', 'test', '--site-threshold-from', 'test', '--output', 'o.json'])
