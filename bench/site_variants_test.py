"""The site-variants bench: its image standardisation, its patient halves, and one
variant trained and scored end to end on small sites."""

import json

import numpy as np
import pytest

from bench import cross_site_test
from bench import site_variants
from dataset import image_files
from tests.fixtures import synthetic_busi


def test_standardisation_gives_every_image_the_same_brightness_and_contrast():
  rng = np.random.default_rng(0)
  images = rng.random((3, 8, 8, 1)).astype(np.float32)
  images *= np.array([0.2, 0.5, 1.0], np.float32)[:, None, None, None]
  target = site_variants.Standardisation(mean=0.4, std=0.1)
  standardised = target(images)
  np.testing.assert_allclose(standardised.mean(axis=(1, 2, 3)), 0.4, atol=1e-5)
  np.testing.assert_allclose(standardised.std(axis=(1, 2, 3)), 0.1, atol=1e-5)
  assert site_variants.Standardisation.of(standardised) == target.of(standardised)


def test_a_patients_images_fall_in_one_half_the_same_on_every_run():
  files = [image_files.ImageFile(relpath=f'{i}.png', label='benign', patient_id=f'p{i % 7}')
           for i in range(70)]
  halves = site_variants.patient_halves(files)
  for patient in {f.patient_id for f in files}:
    assert len({h for f, h in zip(files, halves) if f.patient_id == patient}) == 1
  assert 0 < halves.sum() < len(files)
  np.testing.assert_array_equal(site_variants.patient_halves(files), halves)


@pytest.mark.e2e
def test_one_variant_trains_and_is_scored_as_trained_and_adapted(tmp_path):
  busi = synthetic_busi.write_dataset(str(tmp_path / 'busi'), per_class=8)
  pathologies = ['benign', 'malignant'] * 10
  bra = cross_site_test.write_manifest_site(
      str(tmp_path / 'bra'), pathologies,
      birads=[3 if p == 'benign' else 5 for p in pathologies])
  output = str(tmp_path / 'variants.json')
  assert site_variants.main(['--train-site', f'busi={busi}', '--test-site', f'bra={bra}',
                             '--variants', 'image_norm', '--epochs', '1',
                             '--image-size', '64', '--output', output]) == 0
  with open(output) as f:
    result = json.load(f)
  assert sum(result['held_out_halves'].values()) == len(pathologies)
  trained, adapted = result['results']
  assert (trained['variant'], trained['adapted']) == ('image_norm', False)
  assert (adapted['variant'], adapted['adapted']) == ('image_norm', True)
  assert trained['threshold'] == adapted['threshold']
  assert trained['test_half']['overall']['scans'] == result['held_out_halves']['test']
  assert trained['test_half']['radiologist']['birads_auc'] == 1.0
  assert 'image_norm +adapted' in result['table']
