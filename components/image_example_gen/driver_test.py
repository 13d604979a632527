"""The folder fingerprint that decides whether ImageExampleGen's cache holds."""

import os

from tfx.components.example_gen import utils as example_gen_utils
from tfx.proto import example_gen_pb2
from tfx.utils import proto_utils

from components.image_example_gen import component
from components.image_example_gen import driver
from contracts import configs
from tests import bad_inputs


def _fingerprint(root):
  processor = driver.ImageFolderDriver(metadata_handle=None).get_input_processor(
      splits=[example_gen_pb2.Input.Split(name='images', pattern='*/*')],
      input_base_uri=root)
  span, version = processor.resolve_span_and_version()
  return processor.get_input_fingerprint(span, version)


def test_a_dangling_symlink_does_not_stop_the_driver(tmp_path):
  bad_inputs.grey_png(str(tmp_path / 'benign' / 'a.png'))
  before = _fingerprint(str(tmp_path))
  os.symlink(str(tmp_path / 'gone.png'), str(tmp_path / 'benign' / 'link.png'))
  assert _fingerprint(str(tmp_path)) != before


def test_changed_added_and_stray_files_change_the_fingerprint(tmp_path):
  image = bad_inputs.grey_png(str(tmp_path / 'benign' / 'a.png'), seed=1)
  fingerprints = [_fingerprint(str(tmp_path))]
  bad_inputs.grey_png(image, seed=2, height=41)
  fingerprints.append(_fingerprint(str(tmp_path)))
  bad_inputs.grey_png(str(tmp_path / 'normal' / 'b.png'))
  fingerprints.append(_fingerprint(str(tmp_path)))
  bad_inputs.grey_png(str(tmp_path / 'stray.png'))
  fingerprints.append(_fingerprint(str(tmp_path)))
  assert len(set(fingerprints)) == 4
  assert _fingerprint(str(tmp_path)) == fingerprints[-1]


def test_the_component_uses_this_driver():
  assert component.ImageExampleGen.DRIVER_CLASS is driver.ImageFolderDriver


def test_a_root_with_glob_characters_still_sees_deletions(tmp_path):
  root = tmp_path / 'scans[1]'
  first = bad_inputs.grey_png(str(root / 'benign' / 'a.png'), seed=1)
  bad_inputs.grey_png(str(root / 'benign' / 'b.png'), seed=2)
  before = _fingerprint(str(root))
  os.remove(first)
  assert _fingerprint(str(root)) != before


def test_a_same_size_replacement_with_the_old_times_is_seen(tmp_path):
  image = bad_inputs.grey_png(str(tmp_path / 'benign' / 'a.png'), seed=1)
  stat = os.stat(image)
  before = _fingerprint(str(tmp_path))
  replacement = bad_inputs.grey_png(str(tmp_path / 'b.png'), seed=2)
  with open(replacement, 'rb') as f:
    data = f.read()
  assert len(data) == stat.st_size
  with open(image, 'r+b') as f:
    f.write(data)
  os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
  os.remove(replacement)
  assert _fingerprint(str(tmp_path)) != before


def _exec_properties(data):
  """The exec properties the component compiles for `data`, as the driver gets them."""
  example_gen = component.image_example_gen(data)
  return {key: (proto_utils.proto_to_json(value) if hasattr(value, 'DESCRIPTOR') else value)
          for key, value in example_gen.exec_properties.items()}


def test_the_driver_fingerprints_every_named_site(tmp_path):
  bad_inputs.grey_png(str(tmp_path / 'a' / 'benign' / 'x.png'), seed=1)
  second = bad_inputs.grey_png(str(tmp_path / 'b' / 'benign' / 'y.png'), seed=2)
  data = configs.DataConfig(sites=(configs.Site('a', str(tmp_path / 'a')),
                                   configs.Site('b', str(tmp_path / 'b'))))

  def fingerprint():
    resolved = driver.ImageFolderDriver(metadata_handle=None).resolve_exec_properties(
        _exec_properties(data), None, None)
    return resolved[example_gen_utils.FINGERPRINT_PROPERTY_NAME]

  before = fingerprint()
  assert before.startswith(f'sites: a: image folder {tmp_path / "a"}: sha256 ')
  bad_inputs.grey_png(second, seed=3)
  assert fingerprint() != before
