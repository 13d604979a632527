"""ImageExampleGen's executor: image folders to leak-free TFRecord splits.

It reads one data root or several named sites, each a folder-per-class tree
or a manifest (dataset/manifest.py); the examples carry their site, device,
patient and, where the manifest gives it, the radiologist's BI-RADS, and the
split plan keeps each patient's images together and spreads every site's
classes over the splits (dataset/split_plan.py). Images
the served model was trained on keep their splits: the served version's model
card names its training examples, whose split ledger this run reads, and this
run writes its own ledger beside its splits (dataset/split_ledger.py).

Two passes over the files keep memory flat however large the folder is: the
first decodes each image for its content and perceptual hashes (a few bytes
each, gathered to group near-duplicates, resolve label conflicts and assign
groups to splits), and again with the model's own decoder, so that nothing
Transform or serving cannot read is ingested (decoder_check.py); the second
reads the bytes again, measures their grey levels (dataset/intensity.py, for
the drift check) and writes the tf.Examples of each split. A file that
cannot be read again then is quarantined, not written. Every file found is
accounted for in the data audit
written beside the splits (see dataset/data_audit.py), never dropped
silently; the run stops with `DataAuditError` when the audit breaks the policy.

The splits are plain TFRecords, not TFX's usual GZIP: PNG and JPEG bytes are
compressed already, and GZIP cost about 5 ms per BUSI scan for a file 0.02%
larger (bench/README.md).
"""

import os
from typing import Any, Dict, List, Optional, Tuple

import apache_beam as beam
from absl import logging
import tensorflow as tf
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.example_gen import write_split
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from components import served_data
from components.image_example_gen import component_config
from components.image_example_gen import decoder_check
from components.image_example_gen import driver
from contracts import configs
from contracts import features
from contracts import names
from dataset import data_audit
from dataset import image_files
from dataset import intensity
from dataset import sites as sites_lib
from dataset import split_ledger
from dataset import split_plan

_QUARANTINED = 'quarantined'
_NOTES = 'notes'
# Images planned for a split that could not be read again to be written.
_LOST = 'lost'
# Where a stopped audit's report is copied, beside the ExampleGen node's
# artifact folders: TFX deletes a failed execution's output folder.
STOPPED_AUDIT_FOLDER = 'stopped_data_audit'


class _Fingerprint(beam.DoFn):
  """Hashes and measures each image; unusable files go to `quarantined`."""

  def __init__(self, root: image_files.SiteRoots):
    self._root = root

  def process(self, image_file: image_files.ImageFile):
    try:
      yield image_files.fingerprint(self._root, image_file,
                                    decoder_check.decoder_error)
    except (image_files.InvalidImageError, image_files.UnreadableFileError) as e:
      yield beam.pvalue.TaggedOutput(
          _QUARANTINED, image_files.ExcludedFile(
              image_file.relpath, e.reason, image_file.mask_relpaths))


def _plan_splits(fingerprints: List[image_files.ImageFingerprint],
                 config: component_config.ImageExampleGenConfig,
                 ratios: Dict[str, int], ledger: Dict[str, str]) -> split_plan.SplitPlan:
  return split_plan.plan_splits(fingerprints, ratios, config.near_duplicate_max_bits,
                                config.split_seed, config.label_conflicts, ledger)


def _bytes(value: str) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value: int) -> tf.train.Feature:
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def _float(value: float) -> tf.train.Feature:
  return tf.train.Feature(float_list=tf.train.FloatList(value=[value]))


def _serialize(split_and_example: Tuple[str, tf.train.Example]) -> bytes:
  """The record to write, in place of TFX's `WriteSplit`.

  `WriteSplit` reshuffles before writing, and a reshuffle under the in-process
  Beam runner holds every image of the split in memory at once. The file
  order is random anyway (the image list is reshuffled on creation), and the
  Trainer shuffles, so writing each bundle as it is built loses nothing.
  """
  return split_and_example[1].SerializeToString()


class _ToExample(beam.DoFn):
  """Builds the tf.Example of one ingested image, with its mask and group."""

  def __init__(self, root: image_files.SiteRoots):
    self._root = root

  def process(self, fp: image_files.ImageFingerprint, plan: split_plan.SplitPlan):
    if fp.relpath not in plan.assignment:
      return
    group_id, split = plan.assignment[fp.relpath]
    mask_png, notes = image_files.union_mask(
        self._root, fp.mask_relpaths, (fp.width, fp.height),
        expect_lesion=fp.label != features.NORMAL_CLASS)
    if not fp.mask_relpaths:
      notes.append('no mask file; the mask feature is empty')
    try:
      image = image_files.read_bytes(self._root, fp.relpath)
      if fp.needs_conversion:
        image = image_files.decodable_bytes(image, fp.relpath)
    except (image_files.InvalidImageError, image_files.UnreadableFileError) as e:
      yield beam.pvalue.TaggedOutput(_LOST, image_files.ExcludedFile(
          fp.relpath, f'{e.reason}, after it was first read', fp.mask_relpaths))
      return
    for note in (*fp.notes, *notes):
      yield beam.pvalue.TaggedOutput(_NOTES, data_audit.FileNote(fp.relpath, note))
    grey = intensity.intensity_stats(image)
    example = tf.train.Example(features=tf.train.Features(feature={
        features.IMAGE_KEY: _bytes(image),
        features.LABEL_KEY: _bytes(fp.label.encode()),
        features.FILENAME_KEY: _bytes(fp.relpath.encode()),
        features.HEIGHT_KEY: _int(fp.height),
        features.WIDTH_KEY: _int(fp.width),
        features.SHA256_KEY: _bytes(fp.sha256.encode()),
        features.PHASH_KEY: _bytes(f'{fp.dhash:016x}'.encode()),
        features.GROUP_KEY: _bytes(group_id.encode()),
        features.MASK_KEY: _bytes(mask_png),
        features.MASK_COUNT_KEY: _int(len(fp.mask_relpaths)),
        features.SITE_KEY: _bytes(fp.site.encode()),
        features.DEVICE_KEY: _bytes(fp.device.encode()),
        features.PATIENT_KEY: _bytes(fp.patient_id.encode()),
        features.BIRADS_KEY: tf.train.Feature(int64_list=tf.train.Int64List(
            value=[] if fp.birads is None else [fp.birads])),
        features.INTENSITY_MEAN_KEY: _float(grey.mean),
        features.INTENSITY_SPREAD_KEY: _float(grey.spread),
        features.DARK_FRACTION_KEY: _float(grey.dark_fraction),
    }))
    yield split, example


def _write_audit(plan: split_plan.SplitPlan,
                 unreadable: List[image_files.ExcludedFile],
                 notes: List[data_audit.FileNote],
                 lost: List[image_files.ExcludedFile],
                 scan: image_files.FolderScan,
                 root: str,
                 roots: image_files.SiteRoots,
                 config: component_config.ImageExampleGenConfig,
                 policy: data_audit.DataPolicy,
                 folder: str) -> None:
  lost_files = {entry.file for entry in lost}
  audit = data_audit.build(
      data_root=root,
      policy=policy,
      near_duplicate_max_bits=config.near_duplicate_max_bits,
      assignment={path: split for path, split in plan.splits().items()
                  if path not in lost_files},
      labels=plan.labels,
      groups=plan.groups,
      quarantined=[*scan.quarantined, *unreadable, *plan.dropped, *lost],
      ignored=[*scan.ignored, *plan.repeated],
      notes=notes,
      masks=plan.masks,
      split_groups={path: group for path, (group, _) in plan.assignment.items()},
      site_of=roots.site_of,
      patient_conflicts=plan.patient_conflicts)
  data_audit.write(audit, folder)
  split_ledger.write(plan.ledger, folder)
  for problem in audit.quarantined:
    logging.warning('Quarantined %s: %s', problem.file, problem.reason)
  logging.info('ImageExampleGen: %s', data_audit.summary_line(audit))


def stopped_report_path(examples_uri: str) -> str:
  """Where the report of an audit that stops the run is kept.

  TFX lays artifacts out as `<pipeline root>/<node>/<output>/<execution id>`
  and deletes the folder of a failed execution, so the report goes to
  `<pipeline root>/<node>/stopped_data_audit/<execution id>/` instead.
  """
  output_folder, execution = os.path.split(examples_uri.rstrip('/'))
  return os.path.join(os.path.dirname(output_folder), STOPPED_AUDIT_FOLDER,
                      execution, names.DATA_AUDIT_REPORT_FILE)


def scan_sites(sites: List[configs.Site], class_names: List[str], newest_exports: int = 0
               ) -> Tuple[image_files.SiteRoots, image_files.FolderScan]:
  """Every site's images and excluded files, under the run's relpaths.

  Raises DataAuditError, naming the site, when a site's layout or manifest
  cannot be read at all.
  """
  roots = image_files.SiteRoots(tuple((site.name, site.root) for site in sites))
  scans = []
  for site in sites:
    problem = sites_lib.layout_problem(site, class_names, newest_exports)
    if problem:
      where = f'site {site.name}: ' if roots.prefixed else ''
      raise data_audit.DataAuditError(f'{where}{problem}.')
    scans.append(image_files.with_site(sites_lib.scan(site, class_names, newest_exports),
                                       site.name, roots.prefix(site.name)))
  return roots, image_files.FolderScan(
      images=[i for scan in scans for i in scan.images],
      quarantined=[q for scan in scans for q in scan.quarantined],
      ignored=[i for scan in scans for i in scan.ignored])


def _check_and_record_fingerprint(given: Optional[str], root: str,
                                  config: component_config.ImageExampleGenConfig,
                                  examples: Any) -> None:
  """The data's fingerprint, taken before this executor ran, on the examples.

  It was taken by TFX's driver (local runs) or by the DataFingerprint task
  (Kubeflow), and an orchestrator's cache keys the examples on it. Data that
  changed since (an export still being copied) would be cached under the
  fingerprint of other data, so the run stops instead; taking it again costs
  one more read of the data (BUSI: 0.1-1 s, bench/README.md).
  """
  if not given:
    return
  now = driver.data_fingerprint(root, config.sites)
  if now != given:
    raise data_audit.DataAuditError(
        f'The data changed while this run read it ({given} before, {now} after), '
        'so its examples would be cached as the wrong data; run again once the '
        'export is complete.')
  examples.set_string_custom_property(example_gen_utils.FINGERPRINT_PROPERTY_NAME, given)


class Executor(base_beam_executor.BaseBeamExecutor):
  """Reads the sites (or `input_base`, the one default site); see the module docstring."""

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
    policy = config.data_policy(list(ratios))
    examples = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.EXAMPLES_KEY])
    examples.split_names = artifact_utils.encode_split_names(list(ratios))

    roots, scan = scan_sites(list(config.site_list(root)), list(config.class_names),
                             config.newest_exports)
    logging.info('ImageExampleGen: %d images found under %s.', len(scan.images), root)
    ledger = served_data.ledger(config.served_model_dir)
    with self._make_beam_pipeline() as pipeline:
      fingerprinted = (
          pipeline
          | 'ListImages' >> beam.Create(scan.images, reshuffle=True)
          | 'Fingerprint' >> beam.ParDo(_Fingerprint(roots)).with_outputs(
              _QUARANTINED, main='images'))
      images = fingerprinted.images
      plan = (
          images
          | 'GatherFingerprints' >> beam.combiners.ToList()
          | 'PlanSplits' >> beam.Map(_plan_splits, config, ratios, ledger))
      built = (
          images
          | 'ToExample' >> beam.ParDo(
              _ToExample(roots), beam.pvalue.AsSingleton(plan)).with_outputs(
                  _NOTES, _LOST, main='examples'))
      by_split = built.examples | 'BySplit' >> beam.Partition(
          lambda kv, _: list(ratios).index(kv[0]), len(ratios))
      for index, split in enumerate(ratios):
        _ = (by_split[index]
             | f'Serialize[{split}]' >> beam.Map(_serialize)
             | f'WriteSplit[{split}]' >> beam.io.WriteToTFRecord(
                 os.path.join(artifact_utils.get_split_uri([examples], split),
                              write_split.DEFAULT_FILE_NAME)))
      _ = (plan
           | 'WriteAudit' >> beam.Map(
               _write_audit,
               beam.pvalue.AsList(fingerprinted[_QUARANTINED]),
               beam.pvalue.AsList(built[_NOTES]), beam.pvalue.AsList(built[_LOST]),
               scan, root, roots, config, policy, examples.uri))
    audit = data_audit.read(examples.uri)
    try:
      data_audit.enforce(audit, policy, stopped_report_path(examples.uri))
    except data_audit.DataAuditError:
      data_audit.write(audit, os.path.dirname(stopped_report_path(examples.uri)))
      raise
    examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
    # TFX names every TFRecord format 'tfrecords_gzip'; its readers take the
    # compression from the file name, so these plain files read as plain.
    examples_utils.set_file_format(
        examples, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP))
    _check_and_record_fingerprint(
        exec_properties.get(example_gen_utils.FINGERPRINT_PROPERTY_NAME), root, config,
        examples)
