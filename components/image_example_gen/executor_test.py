"""ImageExampleGen's executor on generated folders, with Beam in this process.

One messy folder holds every kind of bad input the data audit must report; the
tests read back the real TFRecords and the audit the executor wrote.
"""

import dataclasses
import glob
import os
import random
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from components.image_example_gen import component_config
from components.image_example_gen import decoder_check
from components.image_example_gen import executor
from contracts import features
from contracts import names
from dataset import data_audit
from dataset import image_files
from dataset import split_plan
from models import preprocessing
from tests import bad_inputs
from tests.fixtures import synthetic_busi

_CLASSES = ('benign', 'malignant', 'normal')
_SPLITS = {'train': 60, 'eval': 20, 'test': 20}
_CONFIG = component_config.ImageExampleGenConfig(
    near_duplicate_max_bits=10, split_seed=42, class_names=_CLASSES,
    max_quarantined_fraction=1.0, strict=False, label_conflicts='drop')
_ACCEPTED = ('benign/jpeg inside.png', 'benign/sixteen bit.png', 'benign/rgba.png',
             'benign/palette.png', 'benign/échographie ü 1.png')
_NEWLINE_MASK = 'benign/benign (6)\n_mask.png'


def run_executor(root: str, out: str, extra_properties=None, **overrides) -> str:
  """The executor on `root`; `extra_properties`: execution properties besides the usual."""
  config = dataclasses.replace(_CONFIG, **overrides)
  examples = standard_artifacts.Examples()
  examples.uri = out
  os.makedirs(out)
  output_config = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(
      splits=[example_gen_pb2.SplitConfig.Split(name=n, hash_buckets=s)
              for n, s in _SPLITS.items()]))
  exec_properties = {
      standard_component_specs.INPUT_BASE_KEY: root,
      standard_component_specs.OUTPUT_CONFIG_KEY: proto_utils.proto_to_json(output_config),
      standard_component_specs.CUSTOM_CONFIG_KEY: proto_utils.proto_to_json(
          component_config.to_custom_config(config)),
      **(extra_properties or {}),
  }
  # No Beam arguments: DirectRunner in this process (beam_runners.local_direct_args).
  context = base_beam_executor.BaseBeamExecutor.Context()
  executor.Executor(context).Do(
      {}, {standard_component_specs.EXAMPLES_KEY: [examples]}, exec_properties)
  return out


def read_examples(out: str):
  """filename -> (split, tf.train.Example) of every example written."""
  found = {}
  for split in _SPLITS:
    files = glob.glob(os.path.join(out, f'Split-{split}', '*'))
    for record in tf.data.TFRecordDataset(files):
      example = tf.train.Example.FromString(record.numpy())
      name = example.features.feature[features.FILENAME_KEY].bytes_list.value[0]
      found[name.decode()] = (split, example)
  return found


def _feature(example, key):
  feature = example.features.feature[key]
  return (feature.bytes_list.value or feature.int64_list.value)[0]


def write_messy_folder(root: str) -> str:
  """A small dataset plus one file or folder per bad-input case."""
  synthetic_busi.write_dataset(root, per_class=6)
  benign = os.path.join(root, 'benign')
  # A near-duplicate: the same scan with a caliper mark burned in.
  pixels = np.array(Image.open(os.path.join(benign, 'benign (1).png')))
  pixels[2:4, 2:10] = 255
  Image.fromarray(pixels).save(os.path.join(benign, 'benign (1) annotated.png'))
  # A label conflict: a malignant scan filed again under benign.
  shutil.copy(os.path.join(root, 'malignant', 'malignant (2).png'),
              os.path.join(benign, 'benign (copy).png'))
  # A mask whose size differs from its image.
  bad_inputs.mask_png(os.path.join(benign, 'benign (2)_mask.png'), 20, 24)
  bad_inputs.zero_bytes(os.path.join(benign, 'empty.png'))
  bad_inputs.truncated_png(os.path.join(benign, 'truncated.png'))
  bad_inputs.not_an_image(os.path.join(benign, 'export log.png'))
  bad_inputs.decompression_bomb(os.path.join(benign, 'bomb.png'))
  bad_inputs.mask_png(os.path.join(benign, 'ghost_mask.png'))
  bad_inputs.not_an_image(os.path.join(benign, 'notes.txt'))
  bad_inputs.jpeg_named_png(os.path.join(root, _ACCEPTED[0]))
  bad_inputs.sixteen_bit_png(os.path.join(root, _ACCEPTED[1]))
  bad_inputs.rgba_png(os.path.join(root, _ACCEPTED[2]))
  bad_inputs.palette_png(os.path.join(root, _ACCEPTED[3]))
  bad_inputs.grey_png(os.path.join(root, _ACCEPTED[4]), seed=7)
  # What PIL reads but TensorFlow's decoder, in Transform and serving, does not.
  bad_inputs.cmyk_jpeg(os.path.join(benign, 'cmyk.jpg'))
  bad_inputs.png_with_bad_crc(os.path.join(benign, 'bad crc.png'))
  bad_inputs.png_without_end(os.path.join(benign, 'no end.png'))
  # Names that a folder listing keeps apart but a stem-keyed table would not.
  bad_inputs.jpeg_named_png(os.path.join(benign, 'benign (4).jpg'), seed=13)
  bad_inputs.grey_png(os.path.join(benign, 'benign (5).PNG'), seed=12)
  bad_inputs.mask_png(os.path.join(root, _NEWLINE_MASK))
  bad_inputs.grey_png(os.path.join(benign, 'nested', 'inner.png'), seed=8)
  bad_inputs.not_an_image(os.path.join(benign, '.DS_Store'))
  os.symlink(os.path.join(benign, 'benign (3).png'), os.path.join(benign, 'link.png'))
  os.symlink(benign, os.path.join(root, 'linked_class'))
  bad_inputs.grey_png(os.path.join(root, 'cyst', 'cyst (1).png'), seed=9)
  os.makedirs(os.path.join(root, 'empty_folder'))
  bad_inputs.not_an_image(os.path.join(root, 'README.md'))
  return root


@pytest.fixture(scope='module')
def messy(tmp_path_factory):
  base = tmp_path_factory.mktemp('messy')
  root = write_messy_folder(str(base / 'data'))
  out = run_executor(root, str(base / 'examples'))
  return {'root': root, 'base': base, 'out': out,
          'audit': data_audit.read(out), 'examples': read_examples(out)}


def _quarantine_reasons(audit):
  return {q.file: q.reason for q in audit.quarantined}


@pytest.mark.parametrize('relpath, reason', [
    ('benign/empty.png', 'empty file'),
    ('benign/truncated.png', 'corrupt or truncated'),
    ('benign/export log.png', 'not an image'),
    ('benign/bomb.png', 'decompression bomb'),
    ('benign/ghost_mask.png', 'mask without an image'),
    ('benign/notes.txt', 'not an image file name'),
    ('benign/nested', 'sub-folder inside a class folder'),
    ('benign/link.png', 'symbolic link'),
    ('linked_class', 'symbolic link'),
    ('cyst/cyst (1).png', "unknown class folder 'cyst'"),
    ('benign/cmyk.jpg', 'jpeg::Uncompress failed'),
    ('benign/bad crc.png', 'Invalid PNG data'),
    ('benign/no end.png', 'Invalid PNG data'),
    ('benign/benign (4).png', 'same name as benign/benign (4).jpg'),
    ('benign/benign (5).png', 'same name as benign/benign (5).PNG'),
    (_NEWLINE_MASK, 'control character'),
])
def test_each_bad_file_is_quarantined_with_its_reason(messy, relpath, reason):
  assert reason in _quarantine_reasons(messy['audit'])[relpath]
  assert relpath not in messy['examples']


def test_hidden_and_non_data_files_are_ignored_with_a_reason(messy):
  ignored = {i.file: i.reason for i in messy['audit'].ignored}
  assert ignored == {'benign/.DS_Store': 'hidden file or folder',
                     'README.md': 'file outside a class folder',
                     'empty_folder': 'empty class folder'}


def test_every_file_is_accounted_for_exactly_once(messy):
  audit = messy['audit']
  outcomes = data_audit.outcomes(audit)
  listed = set()  # A class folder counts by its files, an empty one by its name.
  for name in os.listdir(messy['root']):
    path = os.path.join(messy['root'], name)
    inside = (os.listdir(path) if os.path.isdir(path) and not os.path.islink(path)
              else [])
    listed.update([f'{name}/{inner}' for inner in inside] or [name])
  assert set(outcomes) == listed
  entries = [*audit.ingested_files, *audit.quarantined, *audit.ignored]
  named = [n for entry in entries for n in (entry.file, *entry.masks)]
  assert len(named) == len(set(named)) == len(listed)
  assert {f for f, outcome in outcomes.items() if outcome == 'ingested'
          and '_mask' not in f} == set(messy['examples'])
  for _, example in messy['examples'].values():
    assert set(_mask_files(messy['root'], example)) <= set(outcomes)


def _mask_files(root, example):
  """The mask files beside an example's image, as the folder names them."""
  stem = os.path.splitext(_feature(example, features.FILENAME_KEY).decode())[0]
  return [os.path.relpath(p, root) for p in glob.glob(os.path.join(root, stem + '_mask*'))]


@pytest.mark.parametrize('relpath', _ACCEPTED)
def test_odd_but_valid_images_are_accepted_and_decodable(messy, relpath):
  _, example = messy['examples'][relpath]
  decoded = preprocessing.decode_image(tf.constant(_feature(example, features.IMAGE_KEY)), 32)
  assert decoded.shape == (32, 32, 1)
  assert float(tf.reduce_max(decoded)) > 0.0


def test_what_the_audit_ingests_transform_and_serving_decode_and_nothing_else(messy):
  """Transform decodes the stored bytes; a serving client sends the original file."""
  decode = lambda data: preprocessing.decode_batch(tf.constant([data]), 32)
  for relpath, (_, example) in messy['examples'].items():
    assert decode(_feature(example, features.IMAGE_KEY)).shape == (1, 32, 32, 1)
    with open(os.path.join(messy['root'], relpath), 'rb') as f:
      assert decode(f.read()).shape == (1, 32, 32, 1), relpath
  for relpath in ('benign/cmyk.jpg', 'benign/bad crc.png', 'benign/no end.png'):
    with open(os.path.join(messy['root'], relpath), 'rb') as f:
      with pytest.raises(tf.errors.InvalidArgumentError):
        decode(f.read())


def test_converted_images_keep_their_intensities(messy):
  _, example = messy['examples']['benign/sixteen bit.png']
  stored = tf.io.decode_png(_feature(example, features.IMAGE_KEY), channels=1)
  assert stored.dtype == tf.uint8
  original = np.asarray(Image.open(os.path.join(messy['root'], 'benign', 'sixteen bit.png')))
  np.testing.assert_array_equal(stored.numpy()[..., 0], (original // 257).astype(np.uint8))


def test_labels_and_masks_are_attached_not_examples(messy):
  examples = messy['examples']
  assert not [name for name in examples if '_mask' in name]
  _, example = examples['malignant/malignant (3).png']
  assert _feature(example, features.LABEL_KEY) == b'malignant'
  assert _feature(example, features.MASK_COUNT_KEY) == 1
  mask = tf.io.decode_png(_feature(example, features.MASK_KEY)).numpy()
  expected = np.asarray(Image.open(os.path.join(
      messy['root'], 'malignant', 'malignant (3)_mask.png'))) > 0
  np.testing.assert_array_equal(mask[..., 0] > 0, expected)
  _, unmasked = examples['benign/échographie ü 1.png']
  assert _feature(unmasked, features.MASK_COUNT_KEY) == 0
  notes = {(n.file, n.note) for n in messy['audit'].notes}
  assert ('benign/échographie ü 1.png', 'no mask file; the mask feature is empty') in notes


def test_a_mask_of_another_size_is_resized_and_noted(messy):
  _, example = messy['examples']['benign/benign (2).png']
  mask = tf.io.decode_png(_feature(example, features.MASK_KEY))
  assert mask.shape[:2] == (60, 72)
  assert any('mask is 24x20, image is 72x60' in n.note for n in messy['audit'].notes
             if n.file == 'benign/benign (2).png')


def test_near_duplicates_share_a_group_and_a_split(messy):
  examples = messy['examples']
  original, annotated = (examples['benign/benign (1).png'],
                         examples['benign/benign (1) annotated.png'])
  assert original[0] == annotated[0]
  assert (_feature(original[1], features.GROUP_KEY) ==
          _feature(annotated[1], features.GROUP_KEY))
  groups = [sorted(m.file for m in g.files)
            for g in messy['audit'].near_duplicate_groups]
  assert ['benign/benign (1) annotated.png', 'benign/benign (1).png'] in groups


def test_label_conflicts_are_dropped_whole_and_reported(messy):
  audit = messy['audit']
  conflict = ['benign/benign (copy).png', 'malignant/malignant (2).png']
  assert [[m.file for m in g.files] for g in audit.label_conflicts] == [conflict]
  assert audit.exact_duplicate_groups[0].labels == ('benign', 'malignant')
  for relpath in conflict:
    assert relpath not in messy['examples']
    assert 'label conflict' in _quarantine_reasons(audit)[relpath]
  report = open(os.path.join(messy['out'], names.DATA_AUDIT_REPORT_FILE)).read()
  assert 'benign/benign (copy).png (benign), malignant/malignant (2).png (malignant)' in report


def _plan(root, **overrides):
  scan = image_files.scan_folder(root, _CLASSES)
  fingerprints = []
  for image_file in scan.images:
    try:
      fingerprints.append(image_files.fingerprint(root, image_file,
                                                  decoder_check.decoder_error))
    except image_files.InvalidImageError:
      pass
  random.Random(len(overrides)).shuffle(fingerprints)
  config = dataclasses.replace(_CONFIG, **overrides)
  return split_plan.plan_splits(fingerprints, _SPLITS, config.near_duplicate_max_bits,
                                config.split_seed, config.label_conflicts)


def test_splits_match_the_plan_whatever_order_beam_delivers(messy):
  written = {name: split for name, (split, _) in messy['examples'].items()}
  assert {path: split for path, (_, split) in _plan(messy['root']).assignment.items()
          } == written


def test_keep_policy_ingests_conflicting_copies_in_one_split(messy):
  plan = _plan(messy['root'], label_conflicts='keep')
  assert not plan.dropped
  assert (plan.assignment['benign/benign (copy).png'] ==
          plan.assignment['malignant/malignant (2).png'])


def test_strict_mode_fails_on_any_quarantined_file(tmp_path):
  root = synthetic_busi.write_dataset(str(tmp_path / 'data'), per_class=4)
  bad_inputs.zero_bytes(os.path.join(root, 'normal', 'blank.png'))
  with pytest.raises(data_audit.DataAuditError, match=r'normal/blank.png: empty file'):
    run_executor(root, str(tmp_path / 'examples'), strict=True)
