"""Mask handling in image_files: unions, and annotations that outline nothing."""

import numpy as np
from PIL import Image

from dataset import image_files


def _write_masks(folder):
  black = np.zeros((6, 8), np.uint8)
  lesion = black.copy()
  lesion[2:4, 2:5] = 255
  Image.fromarray(black).save(folder / 'black.png')
  Image.fromarray(lesion).save(folder / 'lesion.png')


def test_union_of_masks_keeps_every_lesion_pixel(tmp_path):
  _write_masks(tmp_path)
  png, notes = image_files.union_mask(str(tmp_path), ['black.png', 'lesion.png'], (8, 6),
                                      expect_lesion=True)
  union = np.asarray(image_files.open_image(png, 'union'))
  assert notes == []
  assert (union > 0).sum() == 6


def test_all_black_masks_of_a_lesion_image_are_noted(tmp_path):
  _write_masks(tmp_path)
  _, notes = image_files.union_mask(str(tmp_path), ['black.png'], (8, 6),
                                    expect_lesion=True)
  assert notes == ['1 mask file(s), all black: no lesion outlined']


def test_black_masks_are_expected_where_there_is_no_lesion(tmp_path):
  _write_masks(tmp_path)
  _, notes = image_files.union_mask(str(tmp_path), ['black.png'], (8, 6))
  assert notes == []
