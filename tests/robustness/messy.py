"""A generator of messy data folders: every kind of file a real export holds.

`write_messy_folder` lays out a small learnable dataset plus one file per
bad-input case; `CASES` maps each bad file to the words its quarantine reason
must contain. `listing` is what the audit must account for: every file beside
the class folders and inside them (a folder the scan does not enter counts as
one entry, an empty class folder by its name).
"""

import os
from typing import Dict, Set

from tests import bad_inputs
from tests.fixtures import synthetic_busi

NEWLINE_MASK = 'benign/benign (6)\n_mask.png'
# relpath -> words the quarantine reason must contain.
CASES: Dict[str, str] = {
    'benign/empty.png': 'empty file',
    'benign/truncated.png': 'corrupt or truncated',
    'benign/bad crc.png': 'Invalid PNG data',
    'benign/no end.png': 'Invalid PNG data',
    'benign/cmyk.jpg': 'jpeg::Uncompress failed',
    'benign/export log.png': 'not an image',
    'benign/bomb.png': 'decompression bomb',
    'benign/ghost_mask.png': 'mask without an image',
    'benign/notes.txt': 'not an image file name',
    'benign/nested': 'sub-folder inside a class folder',
    'benign/benign (4).png': 'same name as benign/benign (4).jpg',
    'benign/benign (5).png': 'same name as benign/benign (5).PNG',
    NEWLINE_MASK: 'control character',
    'cyst/cyst (1).png': "unknown class folder 'cyst'",
}


def write_messy_folder(root: str, per_class: int = 6) -> str:
  synthetic_busi.write_dataset(root, per_class=per_class)
  benign = os.path.join(root, 'benign')
  bad_inputs.zero_bytes(os.path.join(benign, 'empty.png'))
  bad_inputs.truncated_png(os.path.join(benign, 'truncated.png'))
  bad_inputs.png_with_bad_crc(os.path.join(benign, 'bad crc.png'))
  bad_inputs.png_without_end(os.path.join(benign, 'no end.png'))
  bad_inputs.cmyk_jpeg(os.path.join(benign, 'cmyk.jpg'))
  bad_inputs.not_an_image(os.path.join(benign, 'export log.png'))
  bad_inputs.decompression_bomb(os.path.join(benign, 'bomb.png'))
  bad_inputs.mask_png(os.path.join(benign, 'ghost_mask.png'))
  bad_inputs.not_an_image(os.path.join(benign, 'notes.txt'))
  bad_inputs.grey_png(os.path.join(benign, 'nested', 'inner.png'), seed=8)
  bad_inputs.jpeg_named_png(os.path.join(benign, 'benign (4).jpg'), seed=13)
  bad_inputs.grey_png(os.path.join(benign, 'benign (5).PNG'), seed=12)
  bad_inputs.mask_png(os.path.join(root, NEWLINE_MASK))
  bad_inputs.grey_png(os.path.join(root, 'cyst', 'cyst (1).png'), seed=9)
  bad_inputs.not_an_image(os.path.join(benign, '.DS_Store'))
  bad_inputs.not_an_image(os.path.join(root, 'README.md'))
  os.makedirs(os.path.join(root, 'empty_folder'))
  return root


def listing(root: str) -> Set[str]:
  found = set()
  for name in os.listdir(root):
    path = os.path.join(root, name)
    inside = (os.listdir(path) if os.path.isdir(path) and not os.path.islink(path)
              and not name.startswith('.') else [])
    found.update([f'{name}/{inner}' for inner in inside] or [name])
  return found


def capitalised_class_folder(root: str) -> str:
  synthetic_busi.write_dataset(root, per_class=3)
  os.rename(os.path.join(root, 'benign'), os.path.join(root, 'Benign'))
  return root


def one_level_too_high(root: str) -> str:
  synthetic_busi.write_dataset(os.path.join(root, 'Dataset_BUSI_with_GT'), per_class=3)
  return root


def data_root_is_a_file(root: str) -> str:
  os.makedirs(os.path.dirname(root), exist_ok=True)
  return bad_inputs.not_an_image(root)
