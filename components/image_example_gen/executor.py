"""ImageExampleGen's executor: image folders to leak-free TFRecord splits.

Two passes over the files keep memory flat however large the folder is: the
first decodes each image once for its content and perceptual hashes (a few
bytes each, gathered to group near-duplicates and assign groups to splits);
the second reads the bytes again and writes the tf.Examples of each split.
Files that cannot be used are listed with their reason in `data_audit.json`
beside the splits, never dropped silently.
"""

import collections
import dataclasses
import json
import os
from typing import Any, Dict, List, Tuple

import apache_beam as beam
from absl import logging
import tensorflow as tf
from tfx.components.example_gen import write_split
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from components import group_split
from components import image_files
from components.image_example_gen import component_config
from models import features

AUDIT_FILE_NAME = 'data_audit.json'
_QUARANTINED = 'quarantined'


class _Fingerprint(beam.DoFn):
  """Hashes and measures each image; unusable files go to `quarantined`."""

  def __init__(self, root: str):
    self._root = root

  def process(self, image_file: image_files.ImageFile):
    try:
      yield image_files.fingerprint(self._root, image_file)
    except (image_files.InvalidImageError, OSError) as e:
      yield beam.pvalue.TaggedOutput(
          _QUARANTINED, {'file': image_file.relpath, 'reason': str(e)})


def _assign_splits(fingerprints: List[image_files.ImageFingerprint],
                   config: component_config.ImageExampleGenConfig,
                   ratios: Dict[str, int]) -> Dict[str, Tuple[str, str]]:
  """relpath -> (group id, split) for every usable image."""
  groups = image_files.group_key(fingerprints, config.near_duplicate_max_bits)
  labels = {f.relpath: f.label for f in fingerprints}
  splits = group_split.assign_groups_to_splits(
      [(groups[path], labels[path]) for path in sorted(groups)], ratios,
      config.split_seed)
  return {path: (group, splits[group]) for path, group in groups.items()}


def _bytes(value: str) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value: int) -> tf.train.Feature:
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


class _ToExample(beam.DoFn):
  """Builds the tf.Example of one image, with its mask and group."""

  def __init__(self, root: str):
    self._root = root

  def process(self, fp: image_files.ImageFingerprint,
              assignment: Dict[str, Tuple[str, str]]):
    group_id, split = assignment[fp.relpath]
    mask_png, notes = image_files.union_mask(self._root, fp.mask_relpaths,
                                             (fp.width, fp.height))
    for note in notes:
      yield beam.pvalue.TaggedOutput('notes', {'file': fp.relpath, 'note': note})
    example = tf.train.Example(features=tf.train.Features(feature={
        features.IMAGE_KEY: _bytes(image_files.read_bytes(self._root, fp.relpath)),
        features.LABEL_KEY: _bytes(fp.label.encode()),
        features.FILENAME_KEY: _bytes(fp.relpath.encode()),
        features.HEIGHT_KEY: _int(fp.height),
        features.WIDTH_KEY: _int(fp.width),
        features.SHA256_KEY: _bytes(fp.sha256.encode()),
        features.PHASH_KEY: _bytes(f'{fp.dhash:016x}'.encode()),
        features.GROUP_KEY: _bytes(group_id.encode()),
        features.MASK_KEY: _bytes(mask_png),
        features.MASK_COUNT_KEY: _int(len(fp.mask_relpaths)),
    }))
    yield split, example


def _write_audit(assignment: Dict[str, Tuple[str, str]],
                 fingerprints: List[image_files.ImageFingerprint],
                 quarantined: List[Dict[str, str]],
                 notes: List[Dict[str, str]],
                 skipped: List[image_files.SkippedFile],
                 path: str) -> None:
  labels = {f.relpath: f.label for f in fingerprints}
  counts: Dict[str, Dict[str, int]] = collections.defaultdict(collections.Counter)
  members: Dict[str, List[str]] = collections.defaultdict(list)
  for relpath, (group, split) in sorted(assignment.items()):
    counts[split][labels[relpath]] += 1
    members[group].append(relpath)
  groups = [
      {'group_id': group, 'files': files,
       'labels': sorted({labels[f] for f in files}),
       'split': assignment[files[0]][1]}
      for group, files in sorted(members.items()) if len(files) > 1]
  audit = {
      'ingested': len(assignment),
      'split_counts': {split: dict(sorted(c.items())) for split, c in sorted(counts.items())},
      'quarantined': sorted(quarantined, key=lambda q: q['file']),
      'skipped': [dataclasses.asdict(s) for s in skipped],
      'mask_notes': sorted(notes, key=lambda n: (n['file'], n['note'])),
      'near_duplicate_groups': groups,
      'label_conflicts': [g for g in groups if len(g['labels']) > 1],
  }
  with fileio.open(path, 'w') as f:
    f.write(json.dumps(audit, indent=1, sort_keys=True))
  for problem in audit['quarantined'] + audit['skipped']:
    logging.warning('Not ingested: %s: %s', problem['file'],
                    problem.get('reason'))
  logging.info('ImageExampleGen: %d images ingested, per split %s; %d '
               'near-duplicate groups, %d with conflicting labels.',
               len(assignment), audit['split_counts'], len(groups),
               len(audit['label_conflicts']))


class Executor(base_beam_executor.BaseBeamExecutor):
  """Reads `input_base` as a folder-per-class tree; see the module docstring."""

  def Do(self, input_dict: Dict[str, List[Any]],
         output_dict: Dict[str, List[Any]],
         exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    root = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    output_config = example_gen_pb2.Output()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config)
    ratios = {s.name: s.hash_buckets for s in output_config.split_config.splits}
    config = component_config.from_exec_properties(exec_properties)
    examples = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.EXAMPLES_KEY])
    examples.split_names = artifact_utils.encode_split_names(list(ratios))

    scan = image_files.scan_folder(root)
    logging.info('ImageExampleGen: %d images found under %s.', len(scan.images), root)
    with self._make_beam_pipeline() as pipeline:
      fingerprinted = (
          pipeline
          | 'ListImages' >> beam.Create(scan.images, reshuffle=True)
          | 'Fingerprint' >> beam.ParDo(_Fingerprint(root)).with_outputs(
              _QUARANTINED, main='images'))
      images = fingerprinted.images
      all_fingerprints = beam.pvalue.AsList(images)
      assignment = (
          pipeline
          | 'Start' >> beam.Create([None])
          | 'AssignSplits' >> beam.Map(
              lambda _, fps: _assign_splits(fps, config, ratios), all_fingerprints))
      built = (
          images
          | 'ToExample' >> beam.ParDo(
              _ToExample(root), beam.pvalue.AsSingleton(assignment)).with_outputs(
                  'notes', main='examples'))
      by_split = built.examples | 'BySplit' >> beam.Partition(
          lambda kv, _: list(ratios).index(kv[0]), len(ratios))
      for index, split in enumerate(ratios):
        _ = (by_split[index]
             | f'Values[{split}]' >> beam.Values()
             | f'WriteSplit[{split}]' >> write_split.WriteSplit(
                 artifact_utils.get_split_uri([examples], split),
                 example_gen_pb2.FORMAT_TFRECORDS_GZIP))
      _ = (assignment
           | 'WriteAudit' >> beam.Map(
               _write_audit, all_fingerprints,
               beam.pvalue.AsList(fingerprinted[_QUARANTINED]),
               beam.pvalue.AsList(built.notes), scan.skipped,
               os.path.join(examples.uri, AUDIT_FILE_NAME)))
    examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
    examples_utils.set_file_format(
        examples, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP))
