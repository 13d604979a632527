"""The folder fingerprint that decides whether ImageExampleGen's cache holds."""

import os

from tfx.proto import example_gen_pb2

from components.image_example_gen import component
from components.image_example_gen import driver
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
