"""`read_split` on the TFRecords of current runs (plain) and older ones (GZIP)."""

import os

import numpy as np
import pytest
import tensorflow as tf

from contracts import features
from run_report import examples
from tests.fixtures import exported_model

_CLASSES = ('benign', 'malignant', 'normal')


def _example(filename: str, label: str, grey_level: int) -> bytes:
  image = exported_model.encode_png(np.full((6, 8), grey_level, np.uint8))
  feature = {
      features.FILENAME_KEY: [filename.encode()],
      features.LABEL_KEY: [label.encode()],
      features.IMAGE_KEY: [image],
  }
  return tf.train.Example(features=tf.train.Features(feature={
      key: tf.train.Feature(bytes_list=tf.train.BytesList(value=value))
      for key, value in feature.items()})).SerializeToString()


@pytest.mark.parametrize('file_name, compression', [
    ('data_tfrecord-00000-of-00001', ''),
    ('data_tfrecord-00000-of-00001.gz', 'GZIP'),
])
def test_read_split_reads_plain_and_gzip_files(tmp_path, file_name, compression):
  split_dir = tmp_path / 'Split-test'
  split_dir.mkdir()
  records = [_example('a.png', 'malignant', 40), _example('b.png', 'other', 200)]
  with tf.io.TFRecordWriter(os.path.join(split_dir, file_name),
                            options=tf.io.TFRecordOptions(compression_type=compression)) as f:
    for record in records:
      f.write(record)

  split = examples.read_split(str(tmp_path), 'test', _CLASSES, keep_payload=True)

  assert split.filenames == ['a.png', 'b.png']
  assert split.labels.tolist() == [1, -1]
  assert split.mean_intensities.tolist() == [40.0, 200.0]
  assert split.serialized == records


def test_read_split_without_files_is_none(tmp_path):
  assert examples.read_split(str(tmp_path), 'test', _CLASSES) is None
