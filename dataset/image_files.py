"""Reads a folder-per-class tree of ultrasound images and their lesion masks.

The layout is BUSI's: `<root>/<class>/<name>.png` with masks beside each image
as `<name>_mask.png`, `<name>_mask_1.png`, ... Masks are not examples; their
union becomes the image's `mask` feature.

Every file found is accounted for. Files that cannot become examples are
*quarantined* with the reason (they count against the run's tolerance), while
files that are plainly not data (hidden files such as `.DS_Store`, a README
beside the class folders) are *ignored*, also with the reason. Symbolic links
are never followed: they may point outside the data root or at a file that is
already there.
"""

import dataclasses
import hashlib
import io
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image
from tfx.dsl.io import fileio

from contracts import configs
from contracts import features
from contracts import limits
from contracts import printable
from contracts import serving
from dataset import perceptual_hash

_BOMB = 'possible decompression bomb, rejected without decoding'
# Pixel modes the model's decoder reads as they are; others are re-encoded.
_DECODABLE = {'PNG': ('L', 'RGB'), 'JPEG': ('L', 'RGB')}
# Accepted, with a note: an image smaller on a side than the smallest model
# input is a thumbnail or an icon rather than a scan; one this elongated is
# squeezed to a square. BUSI's and BUS-BRA's scans are all well inside both.
SMALL_SIDE = 32
LARGE_ASPECT_RATIO = 3.0
# Accepted, with a note: a lesion mask covering this much of its image is more
# likely an inverted or blank-white export than a lesion.
LARGE_MASK_COVERAGE = 0.9


class UnreadableFileError(OSError):
  """A file listed by the scan that cannot be read now (gone, or no permission).

  TensorFlow's file system raises its own errors, not OSError; this is the one
  error the executor needs to catch to quarantine the file.
  """

  def __init__(self, relpath: str, reason: str):
    super().__init__(f'{relpath}: {reason}')
    self.reason = reason


class InvalidImageError(ValueError):
  """A file that cannot be used as an image; `reason` says why."""

  def __init__(self, relpath: str, reason: str):
    super().__init__(f'{relpath}: {reason}')
    self.reason = reason


@dataclasses.dataclass(frozen=True)
class ImageFile:
  relpath: str                      # relative to the data root, with '/'
  label: str                        # the class folder's name, or the manifest's label
  mask_relpaths: Tuple[str, ...] = ()
  site: str = ''                    # the named data root it came from
  patient_id: str = ''              # from a manifest; '' when unknown
  device: str = ''                  # from a manifest; '' when unknown
  birads: Optional[int] = None      # from a manifest: the radiologist's category
  # What the audit should know about how the scan found it (an id its site's
  # other rows have and it lacks); its content's notes are added on reading.
  notes: Tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ExcludedFile:
  file: str                         # relative to the data root, with '/'
  reason: str
  masks: Tuple[str, ...] = ()       # an excluded image's masks, excluded with it


@dataclasses.dataclass(frozen=True)
class FolderScan:
  images: List[ImageFile]
  quarantined: List[ExcludedFile]
  ignored: List[ExcludedFile]


@dataclasses.dataclass(frozen=True)
class ImageFingerprint:
  relpath: str
  label: str
  sha256: str
  dhash: int
  height: int
  width: int
  mask_relpaths: Tuple[str, ...]
  # Whether the bytes must be re-encoded (see `decodable_bytes`) to be stored.
  needs_conversion: bool = False
  # What the audit should know about this file's content, e.g. a JPEG named .png.
  notes: Tuple[str, ...] = ()
  site: str = ''
  patient_id: str = ''
  device: str = ''
  birads: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class SiteRoots:
  """Where the files of a run's sites are, and the names the run gives them.

  With several sites (or one named site) every relpath starts with its site's
  name (`busi/benign/benign (1).png`), so files of two roots never collide in
  the examples or the audit; a run of the one `default` site keeps the names
  relative to its root, as runs had them before sites existed.
  """
  roots: Tuple[Tuple[str, str], ...]  # (site name, root folder), in run order

  @property
  def prefixed(self) -> bool:
    return [name for name, _ in self.roots] != [configs.DEFAULT_SITE]

  def prefix(self, site: str) -> str:
    return f'{site}/' if self.prefixed else ''

  def site_of(self, relpath: str) -> str:
    """The site a run-level relpath belongs to."""
    return relpath.split('/', 1)[0] if self.prefixed else self.roots[0][0]

  def path(self, relpath: str) -> str:
    """The file behind a run-level relpath."""
    if not self.prefixed:
      return os.path.join(self.roots[0][1], relpath)
    site, _, local = relpath.partition('/')
    return os.path.join(dict(self.roots)[site], local)


# A data root: one folder, or the roots of a run's sites.
Root = Union[str, SiteRoots]


def with_site(scan: FolderScan, site: str, prefix: str) -> FolderScan:
  """The scan of one site under the run's names: relpaths prefixed, images tagged."""
  def named(file: str) -> str:
    return (prefix.rstrip('/') or file) if file == SITE_FOLDER else prefix + file

  def excluded(entries: Sequence[ExcludedFile]) -> List[ExcludedFile]:
    return [ExcludedFile(named(e.file), e.reason, tuple(prefix + m for m in e.masks))
            for e in entries]
  return FolderScan(
      images=[dataclasses.replace(i, relpath=prefix + i.relpath, site=site,
                                  mask_relpaths=tuple(prefix + m for m in i.mask_relpaths))
              for i in scan.images],
      quarantined=excluded(scan.quarantined), ignored=excluded(scan.ignored))


# The audit's name for a site's folder itself, when the folder holds nothing
# the scan can use (`with_site` names it after the site).
SITE_FOLDER = '.'


def scan_folder(root: str,
                class_names: Optional[Sequence[str]] = None) -> FolderScan:
  """Lists images and masks per class folder, and what was left out and why.

  Args:
    root: the data root, one sub-folder per class.
    class_names: the classes the model knows; images in any other folder are
      quarantined. None accepts every folder as a class.
  """
  if not fileio.isdir(root):
    raise FileNotFoundError(f'Data root {root!r} is not a folder.')
  images: List[ImageFile] = []
  quarantined: List[ExcludedFile] = []
  ignored: List[ExcludedFile] = []
  for name in entries(root):
    path = os.path.join(root, name)
    if name.startswith('.'):
      ignored.append(ExcludedFile(name, 'hidden file or folder'))
    elif os.path.islink(path):
      quarantined.append(ExcludedFile(name, 'symbolic link; links are not followed'))
    elif not fileio.isdir(path):
      if is_image_name(name):
        quarantined.append(ExcludedFile(name, 'image outside a class folder'))
      else:
        ignored.append(ExcludedFile(name, 'file outside a class folder'))
    else:
      scan = _scan_class(root, name)
      if class_names is not None and name not in class_names:
        known = ', '.join(class_names)
        quarantined.extend(
            ExcludedFile(image.relpath, f'unknown class folder {name!r} (known: {known})',
                         image.mask_relpaths)
            for image in scan.images)
      else:
        images.extend(scan.images)
      quarantined.extend(scan.quarantined)
      ignored.extend(scan.ignored)
      if not scan.images and not scan.quarantined and not scan.ignored:
        ignored.append(ExcludedFile(name, 'empty class folder'))
  if not images and not quarantined:
    ignored.append(ExcludedFile(SITE_FOLDER, empty_site_reason(root, class_names, ignored)))
  return FolderScan(images, quarantined, ignored)


def empty_site_reason(root: str, class_names: Optional[Sequence[str]],
                      ignored: Sequence[ExcludedFile]) -> str:
  """Why a site's folder contributes no image, for the audit and the console."""
  classes = ', '.join(f'{name}/' for name in class_names or ())
  if not ignored:
    return f'site folder {root} is empty: it contributes no image'
  return (f'site folder {root} holds no image in a class folder ({classes}): it '
          f'contributes no image ({len(ignored)} ignored: {ignored[0].file}'
          f'{", ..." if len(ignored) > 1 else ""})')


def layout_problem(root: str, class_names: Sequence[str]) -> Optional[str]:
  """Why `root` is not a folder-per-class tree of `class_names`, or None.

  Catches the layouts whose symptom, a class with no images, hides the cause:
  a class folder named in another case, and a data root one level above the
  class folders (BUSI unpacks as `Dataset_BUSI_with_GT/<class>/`).
  """
  expected = ', '.join(f'{name}/' for name in class_names)
  if not fileio.exists(root):
    return f'data root {root} does not exist'
  if not fileio.isdir(root):
    return (f'data root {root} is a file, not a folder; pass the folder that '
            f'holds {expected}')
  folders = [name for name in entries(root)
             if not name.startswith('.') and fileio.isdir(os.path.join(root, name))]
  for name in folders:
    for class_name in class_names:
      if name != class_name and name.strip().lower() == class_name.lower():
        return (f'found folder {name!r} in {root}; class folders must be named '
                f'exactly {expected} (lower case, no spaces): rename {name!r} '
                f'to {class_name!r}')
  if any(name in class_names for name in folders):
    return None
  for name in folders:
    inner = os.path.join(root, name)
    if any(fileio.isdir(os.path.join(inner, c)) for c in class_names):
      return (f'data root looks one level too high: did you mean {inner}? '
              f'(it holds the class folders {expected})')
  return None


def entries(folder: str) -> List[str]:
  return sorted(entry.rstrip('/') for entry in fileio.listdir(folder))


def is_image_name(name: str) -> bool:
  return os.path.splitext(name)[1].lower() in serving.IMAGE_EXTENSIONS


def _scan_class(root: str, label: str) -> FolderScan:
  stems: Dict[str, str] = {}
  masks: Dict[str, List[str]] = {}
  quarantined: List[ExcludedFile] = []
  ignored: List[ExcludedFile] = []
  for name in entries(os.path.join(root, label)):
    relpath = f'{label}/{name}'
    path = os.path.join(root, label, name)
    stem, ext = os.path.splitext(name)
    if name.startswith('.'):
      ignored.append(ExcludedFile(relpath, 'hidden file or folder'))
    elif printable.CONTROL_CHARACTER.search(name):
      quarantined.append(ExcludedFile(
          relpath, 'file name contains a control character (such as a newline); '
          'rename the file'))
    elif os.path.islink(path):
      quarantined.append(ExcludedFile(relpath, 'symbolic link; links are not followed'))
    elif fileio.isdir(path):
      quarantined.append(ExcludedFile(
          relpath, 'sub-folder inside a class folder; its files are not read'))
    elif not is_image_name(name):
      quarantined.append(ExcludedFile(
          relpath, f'not an image file name (expected {", ".join(serving.IMAGE_EXTENSIONS)})'))
    elif mask := features.MASK_NAME_PATTERN.fullmatch(stem):
      masks.setdefault(mask.group('stem'), []).append(relpath)
    elif stem in stems:
      # Masks pair with images by stem, so a second image of the same stem
      # would make its masks ambiguous; the first in name order is kept.
      quarantined.append(ExcludedFile(
          relpath, f'same name as {stems[stem]} with another extension; only one '
          'image per name is read (rename one of them)'))
    else:
      stems[stem] = relpath
  images = [ImageFile(relpath, label, tuple(sorted(masks.pop(stem, []))))
            for stem, relpath in sorted(stems.items())]
  for stem, orphans in sorted(masks.items()):
    quarantined.extend(
        ExcludedFile(m, f'mask without an image (no {stem!r} image beside it)')
        for m in orphans)
  return FolderScan(images, quarantined, ignored)


def read_bytes(root: Root, relpath: str) -> bytes:
  """The file's bytes; UnreadableFileError when it is gone or unreadable."""
  path = root.path(relpath) if isinstance(root, SiteRoots) else os.path.join(root, relpath)
  try:
    with fileio.open(path, 'rb') as f:
      return f.read()
  except Exception as e:  # OSError, or TensorFlow's NotFoundError and the like.
    detail = getattr(e, 'message', None) or str(e)
    raise UnreadableFileError(relpath, f'unreadable ({detail})') from e


def open_image(data: bytes, relpath: str) -> Image.Image:
  """Opens encoded bytes as a PIL image after checking the declared size."""
  if not data:
    raise InvalidImageError(relpath, 'empty file')
  try:
    image = Image.open(io.BytesIO(data))
  except Image.DecompressionBombError as e:
    raise InvalidImageError(relpath, f'{_BOMB}: {e}') from e
  except Image.UnidentifiedImageError as e:
    raise InvalidImageError(relpath, 'not an image (unrecognised content)') from e
  except Exception as e:  # PIL raises several unrelated types for bad bytes.
    raise InvalidImageError(relpath, f'not a readable image ({e})') from e
  width, height = image.size
  if width * height > limits.MAX_IMAGE_PIXELS:
    raise InvalidImageError(
        relpath, f'declares {width}x{height} pixels, over the limit of '
        f'{limits.MAX_IMAGE_PIXELS}: {_BOMB}')
  try:
    image.load()
  except Exception as e:
    raise InvalidImageError(
        relpath, f'image data is corrupt or truncated ({e})') from e
  return image


def fingerprint(root: Root, image_file: ImageFile,
                decoder_error: Optional[Callable[[bytes], Optional[str]]] = None,
                ) -> ImageFingerprint:
  """Hashes and measures one image.

  Args:
    decoder_error: the reason the model's own decoder rejects these bytes, or
      None when it reads them. An image PIL reads but that decoder does not
      (a truncated PNG, a CMYK JPEG) would fail later in Transform or in
      serving, so it is rejected here with that reason.
  """
  data = read_bytes(root, image_file.relpath)
  image = open_image(data, image_file.relpath)
  problem = decoder_error(data) if decoder_error else None
  if problem:
    raise InvalidImageError(image_file.relpath, problem)
  needs_conversion = image.mode not in _DECODABLE.get(image.format, ())
  return ImageFingerprint(
      relpath=image_file.relpath,
      label=image_file.label,
      sha256=hashlib.sha256(data).hexdigest(),
      dhash=perceptual_hash.difference_hash(image),
      height=image.height,
      width=image.width,
      mask_relpaths=image_file.mask_relpaths,
      needs_conversion=needs_conversion,
      notes=(*image_file.notes,
             *_content_notes(image, image_file.relpath, needs_conversion)),
      site=image_file.site,
      patient_id=image_file.patient_id,
      device=image_file.device,
      birads=image_file.birads)


def _content_notes(image: Image.Image, relpath: str,
                   needs_conversion: bool) -> Tuple[str, ...]:
  notes = []
  extension = os.path.splitext(relpath)[1].lower()
  named = 'JPEG' if extension in ('.jpg', '.jpeg') else extension[1:].upper()
  if image.format != named:
    notes.append(f'{image.format} content under a {extension} name; read as {image.format}')
  if needs_conversion:
    notes.append(f'{image.format} in pixel mode {image.mode} stored as 8-bit '
                 f'{_target_mode(image)} PNG')
  width, height = image.size
  if min(width, height) < SMALL_SIDE:
    notes.append(f'small image: {width}x{height} pixels, under {SMALL_SIDE} on a side: '
                 'a thumbnail rather than a scan?')
  if max(width, height) > LARGE_ASPECT_RATIO * min(width, height):
    notes.append(f'elongated image: {width}x{height} pixels, more than '
                 f'{LARGE_ASPECT_RATIO:g} to 1; the model squeezes it to a square')
  return tuple(notes)


def _target_mode(image: Image.Image) -> str:
  return 'L' if image.mode in ('1', 'L', 'LA', 'I', 'I;16', 'I;16B', 'I;16L', 'F') else 'RGB'


def decodable_bytes(data: bytes, relpath: str) -> bytes:
  """8-bit grey or RGB PNG of an image the model's decoder cannot read as is.

  16-bit and float images are scaled to 8 bits (not clipped); alpha is
  dropped; palette, CMYK and other colour spaces become RGB.
  """
  image = open_image(data, relpath)
  if _target_mode(image) == 'RGB':
    return encode_png(np.asarray(image.convert('RGB')))
  if image.mode in ('I', 'I;16', 'I;16B', 'I;16L', 'F'):
    pixels = np.asarray(image, dtype=np.float64)
    top = 65535.0 if image.mode != 'F' else max(float(pixels.max()), 1e-12)
    return encode_png(np.clip(np.rint(pixels * 255.0 / top), 0, 255).astype(np.uint8))
  return encode_png(np.asarray(image.convert('L')))


def union_mask(root: Root, mask_relpaths: Sequence[str], size: Tuple[int, int],
               expect_lesion: Optional[bool] = None) -> Tuple[bytes, List[str]]:
  """PNG (0/255) of the union of the masks, at the image's (width, height).

  Returns the PNG and a note per mask that had to be resized or was unreadable,
  and a note on a union that contradicts the class: with `expect_lesion` (a
  lesion class), masks that outline nothing are a broken annotation (or a
  broken export) that would teach a mask-supervised model that there is no
  lesion; with it False (normal), masks that outline something. Masks covering
  nearly the whole image are noted too.
  """
  union = np.zeros((size[1], size[0]), dtype=bool)
  notes: List[str] = []
  for relpath in mask_relpaths:
    try:
      mask = open_image(read_bytes(root, relpath), relpath).convert('L')
    except (InvalidImageError, UnreadableFileError) as e:
      notes.append(f'mask ignored: {e}')
      continue
    if mask.size != size:
      notes.append(f'{relpath}: mask is {mask.size[0]}x{mask.size[1]}, image is '
                   f'{size[0]}x{size[1]}; resized to the image')
      mask = mask.resize(size, Image.Resampling.NEAREST)
    union |= np.asarray(mask) > 0
  if expect_lesion and mask_relpaths and not union.any():
    notes.append(f'{len(mask_relpaths)} mask file(s), all black: no lesion outlined')
  elif expect_lesion is False and union.any():
    notes.append(f'{len(mask_relpaths)} mask file(s) outline a lesion on a scan of a '
                 'class without lesions')
  if union.mean() > LARGE_MASK_COVERAGE:
    notes.append(f'the masks cover {union.mean():.0%} of the image: an inverted or '
                 'all-white mask?')
  return encode_png(union.astype(np.uint8) * 255), notes


def encode_png(pixels: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format='PNG', optimize=False)
  return buffer.getvalue()


def group_key(fingerprints: Sequence[ImageFingerprint], max_bits: int,
              ) -> Dict[str, str]:
  """Maps each relpath to its near-duplicate group's id (a stable short hash).

  Near-duplicates are looked for within each site only: scans of two hospitals
  are never the same scan, while the 10-bit threshold that holds within a site
  joins similar-looking scans of different sites. Exact copies (same bytes)
  are one group whichever sites filed them.
  """
  ordered = sorted(fingerprints, key=lambda f: f.relpath)
  groups = perceptual_hash.UnionFind(len(ordered))
  by_site: Dict[str, List[int]] = {}
  for i, f in enumerate(ordered):
    by_site.setdefault(f.site, []).append(i)
  for indices in by_site.values():
    first = perceptual_hash.group_near_duplicates(
        [ordered[i].sha256 for i in indices], [ordered[i].dhash for i in indices], max_bits)
    for i, g in zip(indices, first):
      groups.union(i, indices[g])
  groups.union_equal(f.sha256 for f in ordered)
  return {f.relpath: ordered[groups.find(i)].sha256[:16] for i, f in enumerate(ordered)}
