"""Tests for bench/warm_start.py: which images are new, and the adoption verdict."""

from bench import warm_start
from dataset import image_files


def _image(label: str, n: int) -> image_files.ImageFingerprint:
  return image_files.ImageFingerprint(relpath=f'{label}/{label} ({n:02d}).png', label=label,
                                      sha256=f'{label}{n}', dhash=0, height=1, width=1,
                                      mask_relpaths=())


def test_every_tenth_image_of_each_class_is_held_back():
  found = [_image('benign', n) for n in range(25)] + [_image('normal', n) for n in range(9)]
  assert warm_start.held_back(found, 10) == ['benign/benign (09).png',
                                             'benign/benign (19).png']


_COLD = {'train_seconds': 300.0, 'train_cpu_seconds': 600.0, 'accuracy': 0.80,
         'malignant_sensitivity': 0.85, 'malignant_specificity': 0.90, 'macro_auc': 0.93,
         'benign_vs_malignant_auc': 0.91}


def test_warm_three_times_faster_and_as_good_is_adopted():
  warm = {**_COLD, 'train_seconds': 100.0, 'train_cpu_seconds': 190.0, 'accuracy': 0.791}
  verdict = warm_start.verdict(_COLD, warm)
  assert verdict['adopt'] and verdict['speedup'] == 3.0
  assert verdict['quality_warm_minus_cold']['accuracy'] == -0.009


def test_a_figure_more_than_a_hundredth_worse_or_too_little_speed_is_not_adopted():
  worse = {**_COLD, 'train_seconds': 90.0, 'train_cpu_seconds': 180.0,
           'malignant_sensitivity': 0.83}
  assert warm_start.verdict(_COLD, worse)['worse_than_tolerance'] == ['malignant_sensitivity']
  assert not warm_start.verdict(_COLD, worse)['adopt']
  slow = {**_COLD, 'train_seconds': 150.0, 'train_cpu_seconds': 300.0}
  assert warm_start.verdict(_COLD, slow)['faster_enough'] is False
