"""Reads a folder-per-class tree of ultrasound images and their lesion masks.

The layout is BUSI's: `<root>/<class>/<name>.png` with masks beside each image
as `<name>_mask.png`, `<name>_mask_1.png`, ... Masks are not examples; their
union becomes the image's `mask` feature. Every file that is not ingested is
returned with the reason, so the caller can report it instead of dropping it.
"""

import dataclasses
import hashlib
import io
import os
import re
from typing import Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image
from tfx.dsl.io import fileio

from components import perceptual_hash

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')
# Reject before decoding anything that declares more pixels than this: a
# decompression bomb must fail on its header, not after allocating gigabytes.
MAX_PIXELS = 50_000_000

_MASK_PATTERN = re.compile(r'^(?P<stem>.+)_mask(_\d+)?$', re.IGNORECASE)


class InvalidImageError(ValueError):
  """A file that cannot be used as an image; the message says why."""


@dataclasses.dataclass(frozen=True)
class ImageFile:
  relpath: str                      # relative to the data root, with '/'
  label: str                        # the class folder's name
  mask_relpaths: Tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class SkippedFile:
  file: str
  reason: str


@dataclasses.dataclass(frozen=True)
class FolderScan:
  images: List[ImageFile]
  skipped: List[SkippedFile]


@dataclasses.dataclass(frozen=True)
class ImageFingerprint:
  relpath: str
  label: str
  sha256: str
  dhash: int
  height: int
  width: int
  mask_relpaths: Tuple[str, ...]


def scan_folder(root: str) -> FolderScan:
  """Lists images and masks per class folder, and what was left out and why."""
  if not fileio.isdir(root):
    raise FileNotFoundError(f'Data root {root!r} is not a folder.')
  images: List[ImageFile] = []
  skipped: List[SkippedFile] = []
  for entry in sorted(fileio.listdir(root)):
    name = entry.rstrip('/')
    path = os.path.join(root, name)
    if not fileio.isdir(path):
      skipped.append(SkippedFile(name, 'file outside a class folder'))
      continue
    if name.startswith('.'):
      skipped.append(SkippedFile(name, 'hidden folder'))
      continue
    class_images, class_skipped = _scan_class(root, name)
    if not class_images:
      skipped.append(SkippedFile(name, 'class folder holds no images'))
    images.extend(class_images)
    skipped.extend(class_skipped)
  return FolderScan(images, skipped)


def _scan_class(root: str, label: str) -> Tuple[List[ImageFile], List[SkippedFile]]:
  stems: Dict[str, str] = {}
  masks: Dict[str, List[str]] = {}
  skipped: List[SkippedFile] = []
  for entry in sorted(fileio.listdir(os.path.join(root, label))):
    name = entry.rstrip('/')
    relpath = f'{label}/{name}'
    stem, ext = os.path.splitext(name)
    if name.startswith('.'):
      skipped.append(SkippedFile(relpath, 'hidden file'))
    elif fileio.isdir(os.path.join(root, label, name)):
      skipped.append(SkippedFile(relpath, 'sub-folder inside a class folder'))
    elif ext.lower() not in IMAGE_EXTENSIONS:
      skipped.append(SkippedFile(
          relpath, f'not an image extension ({", ".join(IMAGE_EXTENSIONS)})'))
    elif _MASK_PATTERN.match(stem):
      masks.setdefault(_MASK_PATTERN.match(stem).group('stem'), []).append(relpath)
    else:
      stems[stem] = relpath
  images = [ImageFile(relpath, label, tuple(sorted(masks.pop(stem, []))))
            for stem, relpath in sorted(stems.items())]
  for stem, orphans in sorted(masks.items()):
    skipped.extend(SkippedFile(m, f'mask without an image {stem!r}') for m in orphans)
  return images, skipped


def read_bytes(root: str, relpath: str) -> bytes:
  with fileio.open(os.path.join(root, relpath), 'rb') as f:
    return f.read()


def open_image(data: bytes, relpath: str) -> Image.Image:
  """Opens encoded bytes as a PIL image after checking the declared size."""
  if not data:
    raise InvalidImageError(f'{relpath}: empty file')
  try:
    image = Image.open(io.BytesIO(data))
  except Exception as e:  # PIL raises several unrelated types for bad bytes.
    raise InvalidImageError(f'{relpath}: not a readable image ({e})') from e
  width, height = image.size
  if width * height > MAX_PIXELS:
    raise InvalidImageError(
        f'{relpath}: declares {width}x{height} pixels, over the limit of '
        f'{MAX_PIXELS} (possible decompression bomb)')
  try:
    image.load()
  except Exception as e:
    raise InvalidImageError(f'{relpath}: image data is corrupt ({e})') from e
  return image


def fingerprint(root: str, image_file: ImageFile) -> ImageFingerprint:
  data = read_bytes(root, image_file.relpath)
  image = open_image(data, image_file.relpath)
  return ImageFingerprint(
      relpath=image_file.relpath,
      label=image_file.label,
      sha256=hashlib.sha256(data).hexdigest(),
      dhash=perceptual_hash.difference_hash(image),
      height=image.height,
      width=image.width,
      mask_relpaths=image_file.mask_relpaths)


def union_mask(root: str, mask_relpaths: Sequence[str],
               size: Tuple[int, int]) -> Tuple[bytes, List[str]]:
  """PNG (0/255) of the union of the masks, at the image's (width, height).

  Returns the PNG and a note per mask that had to be resized or was unreadable.
  """
  union = np.zeros((size[1], size[0]), dtype=bool)
  notes: List[str] = []
  for relpath in mask_relpaths:
    try:
      mask = open_image(read_bytes(root, relpath), relpath).convert('L')
    except InvalidImageError as e:
      notes.append(f'mask ignored: {e}')
      continue
    if mask.size != size:
      notes.append(f'{relpath}: mask is {mask.size[0]}x{mask.size[1]}, image is '
                   f'{size[0]}x{size[1]}; resized to the image')
      mask = mask.resize(size, Image.Resampling.NEAREST)
    union |= np.asarray(mask) > 0
  return encode_png(union.astype(np.uint8) * 255), notes


def encode_png(pixels: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format='PNG', optimize=False)
  return buffer.getvalue()


def group_key(fingerprints: Sequence[ImageFingerprint], max_bits: int,
              ) -> Dict[str, str]:
  """Maps each relpath to its near-duplicate group's id (a stable short hash)."""
  ordered = sorted(fingerprints, key=lambda f: f.relpath)
  first = perceptual_hash.group_near_duplicates(
      [f.sha256 for f in ordered], [f.dhash for f in ordered], max_bits)
  return {f.relpath: ordered[g].sha256[:16] for f, g in zip(ordered, first)}

