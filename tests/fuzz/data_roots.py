"""Data roots at random, for the fuzzer: the trees and manifests real exports hold.

A data root is drawn as a `RootSpec`, a plain description (entries with their
kind, name, size, damage; manifest rows), and `write` lays it out on disk, so
that hypothesis shrinks the description and a failure prints as a small,
readable value. Entries whose path collides with one already written (a file
where a folder should be) are skipped: the checks read what is on disk.
"""

import dataclasses
import io
import json
import os
import random
from typing import List, Optional, Tuple

import numpy as np
from hypothesis import strategies as st
from PIL import Image

from tests.fixtures import synthetic_busi

CLASS_FOLDERS = ('benign', 'malignant', 'normal', 'Benign', 'normal ', 'cyst', '.hidden')
LABELS = ('benign', 'malignant', 'normal', 'Malignant', 'cyst', '')
KINDS = ('image', 'image', 'image', 'mask', 'damaged', 'text', 'empty', 'copy',
         'link_inside', 'link_outside', 'link_dangling', 'folder', 'unreadable')
DAMAGES = ('truncate', 'flip', 'zero_tail', 'garbage_head')
MODES = ('L', 'RGB', 'RGBA', 'P', 'I;16', 'LA', '1', 'CMYK')
EXTENSIONS = ('.png', '.png', '.jpg', '.PNG', '.jpeg', '.txt', '')
MANIFEST_FORMS = ('rows', 'rows', 'rows', 'empty', 'header_only', 'not_utf8', 'bom')

_NAME_CHARS = st.sampled_from(list('abcz019 ()-_éü') + ['\n', '.'])


@dataclasses.dataclass(frozen=True)
class EntrySpec:
  folder: str                       # '' (the root), a class folder, or 'class/sub'
  stem: str
  extension: str
  kind: str
  width: int
  height: int
  mode: str
  image_format: str                 # 'PNG' or 'JPEG' (the bytes, whatever the name)
  damage: str
  seed: int
  mask_of: int                      # for masks: the index of an earlier entry, or -1


@dataclasses.dataclass(frozen=True)
class RowSpec:
  entry: int                        # index of the entry whose file it names; -1: a missing one
  path_form: str                    # 'plain', 'dot', 'absolute', 'parent', 'empty', 'backslash'
  label: str
  patient: str
  device: str
  with_mask: bool


@dataclasses.dataclass(frozen=True)
class RootSpec:
  learnable: int                    # synthetic BUSI-like images per class first (0: none)
  entries: Tuple[EntrySpec, ...]
  manifest: str                     # '' (a class-folder site), 'csv' or 'jsonl'
  manifest_form: str
  rows: Tuple[RowSpec, ...]


@st.composite
def entry_specs(draw, manifest: bool) -> EntrySpec:
  folder = draw(st.one_of(
      st.just(''), st.sampled_from(('images', 'masks/x')) if manifest
      else st.sampled_from(CLASS_FOLDERS),
      st.builds(lambda c, s: f'{c}/{s}', st.sampled_from(CLASS_FOLDERS[:3]),
                st.sampled_from(('nested', '.thumbs')))))
  return EntrySpec(
      folder=folder,
      stem=draw(st.text(_NAME_CHARS, min_size=1, max_size=8)),
      extension=draw(st.sampled_from(EXTENSIONS)),
      kind=draw(st.sampled_from(KINDS)),
      width=draw(st.integers(1, 90)),
      height=draw(st.integers(1, 90)),
      mode=draw(st.sampled_from(MODES)),
      image_format=draw(st.sampled_from(('PNG', 'PNG', 'JPEG'))),
      damage=draw(st.sampled_from(DAMAGES)),
      seed=draw(st.integers(0, 2 ** 16)),
      mask_of=draw(st.integers(-1, 12)))


@st.composite
def root_specs(draw, manifest: Optional[str] = None) -> RootSpec:
  """A data root: a class-folder tree, or with `manifest` ('csv', 'jsonl') a manifest site."""
  kind = draw(st.sampled_from(('', '', 'csv', 'jsonl'))) if manifest is None else manifest
  entries = tuple(draw(st.lists(entry_specs(bool(kind)), max_size=14)))
  rows = tuple(draw(st.lists(st.builds(
      RowSpec,
      entry=st.integers(-1, max(len(entries) - 1, 0)),
      path_form=st.sampled_from(('plain', 'plain', 'plain', 'dot', 'absolute', 'parent',
                                 'empty', 'backslash')),
      label=st.sampled_from(LABELS),
      patient=st.sampled_from(('', 'p1', 'p2', 'p3')),
      device=st.sampled_from(('', 'Scanner A')),
      with_mask=st.booleans()), max_size=16))) if kind else ()
  return RootSpec(
      learnable=draw(st.sampled_from((0, 3, 3))),
      entries=entries,
      manifest=kind,
      manifest_form=draw(st.sampled_from(MANIFEST_FORMS)) if kind else '',
      rows=rows)


def _image_bytes(spec: EntrySpec) -> bytes:
  rng = np.random.default_rng(spec.seed)
  pixels = rng.integers(0, 256, (spec.height, spec.width, 3), dtype=np.uint8)
  image = Image.fromarray(pixels, 'RGB')
  mode = spec.mode
  if spec.image_format == 'JPEG' and mode not in ('L', 'RGB', 'CMYK'):
    mode = 'L'
  if spec.image_format == 'PNG' and mode == 'CMYK':
    mode = 'RGB'
  image = (image.convert('L').point(lambda v: v * 200) if mode == 'I;16'
           else image.convert(mode))
  if mode == 'I;16':
    image = Image.fromarray(np.asarray(image, dtype=np.uint16) * 200)
  buffer = io.BytesIO()
  image.save(buffer, format=spec.image_format)
  return buffer.getvalue()


def _mask_bytes(spec: EntrySpec, size: Tuple[int, int]) -> bytes:
  rng = np.random.default_rng(spec.seed)
  width, height = size if spec.damage != 'flip' else (spec.width, spec.height)
  choice = spec.seed % 3   # black, a lesion, all white
  mask = np.zeros((height, width), np.uint8)
  if choice == 1:
    mask[height // 4:height // 2 + 1, width // 4:width // 2 + 1] = 255
  elif choice == 2:
    mask[:] = 255
  del rng
  buffer = io.BytesIO()
  Image.fromarray(mask).save(buffer, format='PNG')
  return buffer.getvalue()


def _damaged(data: bytes, spec: EntrySpec) -> bytes:
  rng = random.Random(spec.seed)
  if spec.damage == 'truncate':
    return data[:rng.randrange(0, max(len(data), 1))]
  if spec.damage == 'flip':
    data = bytearray(data)
    for _ in range(3):
      data[rng.randrange(len(data))] ^= 0xFF
    return bytes(data)
  if spec.damage == 'zero_tail':
    cut = rng.randrange(len(data))
    return data[:cut] + bytes(len(data) - cut)
  return b'\x00garbage' + data[8:]


def _path(root: str, spec: EntrySpec) -> str:
  name = spec.stem + spec.extension
  return os.path.join(root, spec.folder, name) if spec.folder else os.path.join(root, name)


def _fits(root: str, path: str) -> bool:
  """Whether `path` can be created: no file or link stands where a folder must be."""
  parent = os.path.dirname(path)
  while parent != root:
    if os.path.lexists(parent) and (os.path.islink(parent) or not os.path.isdir(parent)):
      return False
    parent = os.path.dirname(parent)
  return not os.path.lexists(path)


def write(root: str, spec: RootSpec, outside: str) -> List[str]:
  """Lays `spec` out under `root`; `outside` is a file outside it for links.

  Returns the relpath written for each entry ('' where it was skipped).
  """
  os.makedirs(root, exist_ok=True)
  if spec.learnable:
    synthetic_busi.write_dataset(os.path.join(root, 'images') if spec.manifest else root,
                                 per_class=spec.learnable, seed=spec.learnable)
  written: List[str] = []
  for entry in spec.entries:
    path = _path(root, entry)
    if not _fits(root, path):
      written.append('')
      continue
    os.makedirs(os.path.dirname(path), exist_ok=True)
    relpath = os.path.relpath(path, root).replace(os.sep, '/')
    target = written[entry.mask_of] if 0 <= entry.mask_of < len(written) else ''
    if entry.kind == 'folder':
      os.makedirs(path)
    elif entry.kind.startswith('link'):
      source = {'link_inside': os.path.join(root, target) if target else outside,
                'link_outside': outside,
                'link_dangling': os.path.join(root, 'no such file')}[entry.kind]
      os.symlink(source, path)
    else:
      with open(path, 'wb') as f:
        f.write(_content(root, entry, target))
      if entry.kind == 'unreadable':
        os.chmod(path, 0)
    written.append(relpath)
  if spec.manifest:
    _write_manifest(root, spec, written)
  return written


def _content(root: str, entry: EntrySpec, target: str) -> bytes:
  if entry.kind in ('image', 'unreadable'):
    return _image_bytes(entry)
  if entry.kind == 'mask':
    size = (entry.width, entry.height)
    if target and os.path.isfile(os.path.join(root, target)):
      try:
        size = Image.open(os.path.join(root, target)).size
      except Exception:  # pylint: disable=broad-except  (a damaged target)
        pass
    return _mask_bytes(entry, size)
  if entry.kind == 'damaged':
    return _damaged(_image_bytes(entry), entry)
  if entry.kind == 'copy' and target and os.path.isfile(os.path.join(root, target)):
    with open(os.path.join(root, target), 'rb') as f:
      return f.read()
  if entry.kind == 'text':
    return b'export log\n'
  return b''


def _row_path(root: str, row: RowSpec, written: List[str]) -> str:
  relpath = written[row.entry] if 0 <= row.entry < len(written) else ''
  relpath = relpath or f'images/missing {row.entry}.png'
  return {'plain': relpath, 'dot': f'./{relpath}', 'absolute': os.path.join(root, relpath),
          'parent': f'../{relpath}', 'empty': '',
          'backslash': relpath.replace('/', '\\')}[row.path_form]


def _write_manifest(root: str, spec: RootSpec, written: List[str]) -> None:
  name = 'manifest.csv' if spec.manifest == 'csv' else 'manifest.jsonl'
  path = os.path.join(root, name)
  if os.path.lexists(path):
    return
  columns = ('image', 'label', 'mask', 'patient_id', 'device')
  records = []
  for row in spec.rows:
    image = _row_path(root, row, written)
    stem = os.path.splitext(image)[0]
    records.append((image, row.label, f'{stem}_mask.png' if row.with_mask else '',
                    row.patient, row.device))
  if spec.manifest == 'csv':
    lines = [','.join(columns)] + [','.join(_csv_cell(v) for v in r) for r in records]
  else:
    lines = [json.dumps(dict(zip(columns, r)), ensure_ascii=False) for r in records]
    lines.insert(len(lines) // 2, '{not json')
  text = '\n'.join(lines) + '\n'
  data = {'empty': b'', 'header_only': (lines[0] + '\n').encode() if spec.manifest == 'csv'
          else b'\n', 'not_utf8': b'\xff\xfe' + text.encode('utf-16-le'),
          'bom': b'\xef\xbb\xbf' + text.encode()}.get(spec.manifest_form, text.encode())
  with open(path, 'wb') as f:
    f.write(data)


def _csv_cell(value: str) -> str:
  if any(c in value for c in ',"\n\r'):
    return '"' + value.replace('"', '""') + '"'
  return value
