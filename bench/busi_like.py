"""BUSI-like datasets of k times BUSI's size, for the scale benchmark.

Copy c of every BUSI image is a cheap, seeded variant of it: cropped to 85-100%
of each side, rescaled by 0.85-1.15 (width kept within BUSI's 190-1048
pixels), sometimes mirrored, with faint speckle noise, saved as grayscale PNG
with its union mask beside it under BUSI's names. The sizes, file sizes and
layout therefore follow BUSI's distribution without anyone writing a model of
it, and the work ImageExampleGen and Transform do per image is the same.

Each copy is generated once into `<cache>/copies/<c>/`; the k-times dataset
`<cache>/<k>x/` is hard links to copies 0..k-1, so 1x, 2x and 10x share files.
"""

import concurrent.futures
import dataclasses
import json
import os
import shutil
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from dataset import image_files

MIN_WIDTH, MAX_WIDTH = 190, 1048  # BUSI's narrowest and widest image
_NOISE_SD = 3.0
_DONE_FILE = 'done.json'


@dataclasses.dataclass(frozen=True)
class _Source:
  relpath: str
  mask_relpaths: Tuple[str, ...]


def _sources(busi_root: str) -> List[_Source]:
  scan = image_files.scan_folder(busi_root)
  if not scan.images:
    raise ValueError(f'{busi_root}: no class folders with images in it')
  return [_Source(i.relpath, i.mask_relpaths) for i in scan.images]


def _union_mask(busi_root: str, source: _Source, size: Tuple[int, int]) -> Image.Image:
  union = np.zeros(size[::-1], dtype=bool)
  for relpath in source.mask_relpaths:
    with Image.open(os.path.join(busi_root, relpath)) as mask:
      union |= np.asarray(mask.convert('L').resize(size, Image.Resampling.NEAREST)) > 0
  return Image.fromarray(union.astype(np.uint8) * 255)


def variant(image: Image.Image, mask: Image.Image, rng: np.random.Generator,
            ) -> Tuple[Image.Image, Image.Image]:
  """One copy of a grayscale image and its mask: same crop, scale and mirror."""
  width, height = image.size
  crop_w = max(1, int(width * rng.uniform(0.85, 1.0)))
  crop_h = max(1, int(height * rng.uniform(0.85, 1.0)))
  left = int(rng.integers(0, width - crop_w + 1))
  top = int(rng.integers(0, height - crop_h + 1))
  box = (left, top, left + crop_w, top + crop_h)
  scale = float(np.clip(rng.uniform(0.85, 1.15), MIN_WIDTH / crop_w, MAX_WIDTH / crop_w))
  size = (int(round(crop_w * scale)), max(1, int(round(crop_h * scale))))
  image = image.crop(box).resize(size, Image.Resampling.BILINEAR)
  mask = mask.crop(box).resize(size, Image.Resampling.NEAREST)
  if rng.random() < 0.5:
    image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    mask = mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
  pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, _NOISE_SD, size[::-1])
  return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), mask


def _write_variant(busi_root: str, copy_dir: str, copy: int, index: int,
                   source: _Source, seed: int) -> None:
  rng = np.random.default_rng([seed, copy, index])
  with Image.open(os.path.join(busi_root, source.relpath)) as original:
    image = original.convert('L')
  image, mask = variant(image, _union_mask(busi_root, source, image.size), rng)
  stem = os.path.splitext(source.relpath)[0] + f'_v{copy}'
  os.makedirs(os.path.dirname(os.path.join(copy_dir, stem)), exist_ok=True)
  image.save(os.path.join(copy_dir, stem + '.png'))
  mask.save(os.path.join(copy_dir, stem + '_mask.png'))


def _done_marker(folder: str) -> str:
  return folder.rstrip('/') + '.' + _DONE_FILE


def _is_done(folder: str, expected: dict) -> bool:
  try:
    with open(_done_marker(folder)) as f:
      return json.load(f) == expected and os.path.isdir(folder)
  except (OSError, ValueError):
    return False


def _mark_done(folder: str, description: dict) -> None:
  with open(_done_marker(folder), 'w') as f:
    json.dump(description, f)


def _generate_copy(busi_root: str, copy_dir: str, copy: int, sources: Sequence[_Source],
                   seed: int, workers: Optional[int]) -> None:
  shutil.rmtree(copy_dir, ignore_errors=True)
  with concurrent.futures.ProcessPoolExecutor(workers) as pool:
    for done in [pool.submit(_write_variant, busi_root, copy_dir, copy, i, s, seed)
                 for i, s in enumerate(sources)]:
      done.result()


def dataset(busi_root: str, cache_dir: str, copies: int, seed: int = 0,
            workers: Optional[int] = None) -> str:
  """The folder of a BUSI-like dataset `copies` times BUSI's size, built if needed.

  A copy or dataset interrupted half-way has no done-marker and is rebuilt.
  """
  if copies < 1:
    raise ValueError(f'a dataset needs at least one copy, got {copies}')
  busi_root = os.path.abspath(busi_root)
  sources = _sources(busi_root)
  copy_dirs = []
  for copy in range(copies):
    copy_dir = os.path.join(cache_dir, 'copies', str(copy))
    description = {'source': busi_root, 'images': len(sources), 'seed': seed}
    if not _is_done(copy_dir, description):
      _generate_copy(busi_root, copy_dir, copy, sources, seed, workers)
      _mark_done(copy_dir, description)
    copy_dirs.append(copy_dir)
  folder = os.path.join(cache_dir, f'{copies}x')
  description = {'source': busi_root, 'images': len(sources) * copies, 'seed': seed}
  if not _is_done(folder, description):
    shutil.rmtree(folder, ignore_errors=True)
    for copy_dir in copy_dirs:
      for label in sorted(os.listdir(copy_dir)):
        os.makedirs(os.path.join(folder, label), exist_ok=True)
        for name in os.listdir(os.path.join(copy_dir, label)):
          os.link(os.path.join(copy_dir, label, name), os.path.join(folder, label, name))
    _mark_done(folder, description)
  return folder
