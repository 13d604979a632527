"""Tests for bench/busi_like.py on a small BUSI-shaped folder."""

import os

import numpy as np
import pytest
from PIL import Image

from bench import busi_like
from dataset import image_files
from tests.fixtures import synthetic_busi


@pytest.fixture(scope='module')
def busi_root(tmp_path_factory):
  return synthetic_busi.write_dataset(str(tmp_path_factory.mktemp('busi')), per_class=3)


def test_k_copies_in_busi_layout_with_aligned_masks(busi_root, tmp_path):
  folder = busi_like.dataset(busi_root, str(tmp_path), copies=2, workers=1)
  scan = image_files.scan_folder(folder, synthetic_busi.CLASSES)
  assert not scan.quarantined
  assert len(scan.images) == 2 * 9
  for image_file in scan.images:
    assert len(image_file.mask_relpaths) == 1
    with Image.open(os.path.join(folder, image_file.relpath)) as image, \
        Image.open(os.path.join(folder, image_file.mask_relpaths[0])) as mask:
      assert image.mode == 'L'
      assert mask.size == image.size
      assert busi_like.MIN_WIDTH <= image.size[0] <= busi_like.MAX_WIDTH
  labels = {f.label for f in scan.images}
  assert labels == set(synthetic_busi.CLASSES)


def test_larger_datasets_reuse_the_cached_copies(busi_root, tmp_path):
  one = busi_like.dataset(busi_root, str(tmp_path), copies=1, workers=1)
  first = os.path.join(one, 'benign', 'benign (1)_v0.png')
  written = os.stat(first).st_mtime_ns
  two = busi_like.dataset(busi_root, str(tmp_path), copies=2, workers=1)
  assert os.path.samefile(first, os.path.join(two, 'benign', 'benign (1)_v0.png'))
  assert busi_like.dataset(busi_root, str(tmp_path), copies=2, workers=1) == two
  assert os.stat(first).st_mtime_ns == written


def test_a_variant_is_reproducible_and_keeps_the_lesion_under_its_mask():
  pixels = np.full((300, 400), 40, np.uint8)
  pixels[100:200, 150:250] = 230
  mask = Image.fromarray(((pixels > 128) * 255).astype(np.uint8))
  first = busi_like.variant(Image.fromarray(pixels), mask, np.random.default_rng(7))
  second = busi_like.variant(Image.fromarray(pixels), mask, np.random.default_rng(7))
  assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, second))
  image, varied_mask = (np.asarray(x) for x in first)
  inside = image[varied_mask > 0]
  assert inside.size and inside.mean() > 200
  assert image[varied_mask == 0].mean() < 60


def test_folder_without_images_is_refused(tmp_path):
  os.makedirs(tmp_path / 'src' / 'benign')
  with pytest.raises(ValueError, match='no class folders with images'):
    busi_like.dataset(str(tmp_path / 'src'), str(tmp_path / 'cache'), copies=1)
