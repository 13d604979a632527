"""Small BUSI-like datasets that a CNN can learn in seconds, for tests.

Each class has its own lesion look (benign: bright smooth ellipse, malignant:
dark spiky blob, normal: none) over speckle noise, with BUSI's file layout:
`<class>/<class> (N).png` and `<class> (N)_mask.png` beside it.
"""

import os
from typing import Sequence

import numpy as np
from PIL import Image

CLASSES = ('benign', 'malignant', 'normal')


def _lesion_mask(rng: np.random.Generator, height: int, width: int,
                 spiky: bool) -> np.ndarray:
  yy, xx = np.mgrid[0:height, 0:width]
  cy, cx = rng.uniform(0.35, 0.65) * height, rng.uniform(0.35, 0.65) * width
  ry, rx = rng.uniform(0.15, 0.25) * height, rng.uniform(0.15, 0.25) * width
  angle = np.arctan2(yy - cy, xx - cx)
  radius = 1.0 + (0.35 * np.sin(7 * angle + rng.uniform(0, 6)) if spiky else 0.0)
  return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= radius ** 2


def make_image(label: str, rng: np.random.Generator, height: int = 60,
               width: int = 72):
  """(uint8 image, bool mask) for one synthetic scan of `label`."""
  image = rng.normal(110, 25, (height, width))
  if label == 'normal':
    mask = np.zeros((height, width), dtype=bool)
  else:
    mask = _lesion_mask(rng, height, width, spiky=label == 'malignant')
    image[mask] = 220 if label == 'benign' else 25
    image += rng.normal(0, 10, (height, width))
  return np.clip(image, 0, 255).astype(np.uint8), mask


def write_dataset(root: str, per_class: int = 12, seed: int = 0,
                  classes: Sequence[str] = CLASSES) -> str:
  """Writes the dataset under `root`; returns `root`."""
  rng = np.random.default_rng(seed)
  for label in classes:
    folder = os.path.join(root, label)
    os.makedirs(folder, exist_ok=True)
    for n in range(1, per_class + 1):
      image, mask = make_image(label if label in CLASSES else 'benign', rng)
      stem = os.path.join(folder, f'{label} ({n})')
      Image.fromarray(image).save(f'{stem}.png')
      Image.fromarray(mask.astype(np.uint8) * 255).save(f'{stem}_mask.png')
  return root


def write_manifest_dataset(root: str, patients_per_class: int = 6, seed: int = 1,
                           classes: Sequence[str] = ('benign', 'malignant'),
                           devices: Sequence[str] = ('Scanner A', 'Scanner B')) -> str:
  """Writes a BUS-BRA-like site under `root` (default manifest columns); returns `root`.

  Each patient has two scans (`p<N>-l`, `p<N>-r`) of one class on one device,
  listed in `manifest.csv` with their masks under `masks/`; by default there
  is no normal class, as at BUS-BRA.
  """
  rng = np.random.default_rng(seed)
  os.makedirs(os.path.join(root, 'images'), exist_ok=True)
  os.makedirs(os.path.join(root, 'masks'), exist_ok=True)
  rows = ['image,label,mask,patient_id,device']
  for label in classes:
    for n in range(1, patients_per_class + 1):
      patient = f'{label[0]}{n:03d}'
      device = devices[n % len(devices)]
      for side in ('l', 'r'):
        image, mask = make_image(label, rng)
        name = f'{patient}-{side}.png'
        Image.fromarray(image).save(os.path.join(root, 'images', name))
        Image.fromarray(mask.astype(np.uint8) * 255).save(os.path.join(root, 'masks', name))
        rows.append(f'images/{name},{label},masks/{name},{patient},{device}')
  with open(os.path.join(root, 'manifest.csv'), 'w', encoding='utf-8') as f:
    f.write('\n'.join(rows) + '\n')
  return root
