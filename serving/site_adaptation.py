"""A served version adapted to a new site: its batch-norm statistics re-estimated there.

A model trained at one hospital ranks another hospital's lesions better once
its batch-norm layers normalise with that hospital's statistics
(models/batch_norm_adaptation.py, bench/README.md "Sites never seen"). This
writes such a copy of a pushed version, for the site to serve: the network
is rebuilt from the version's model card, its weights read from the
version's own variables, its statistics re-estimated on the site's scans,
and the version's variables rewritten with only those statistics changed.
The site's threshold is then chosen on the copy's own scores and written into
the copy's decision (`signatures.THRESHOLD_VARIABLE`), so that the copy, served
as it is, refers at the site's operating point. Everything else (signatures,
the Transform graph, the constants, warm-up, the Trainer's operating point
record) is the served version's, byte for byte; other sites' thresholds are
left out, and the copy's model card names the site.
"""

import dataclasses
import os
import shutil
import tempfile
from typing import Callable, Dict, Sequence

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2

from contracts import configs
from contracts import operating_point as op
from contracts import printable
from models import batch_norm_adaptation
from models import operating_point
from models import preprocessing
from models import registry
from models import signatures
from models import training_loop
from serving import model_card

_OBJECT_GRAPH = '_CHECKPOINTABLE_OBJECT_GRAPH'
_ATTRIBUTES = '/.ATTRIBUTES/'


class AdaptationError(ValueError):
  """The version cannot be adapted; the message says why, in one line."""


@dataclasses.dataclass(frozen=True)
class AdaptedVersion:
  version_dir: str
  site: str
  scans: int
  batch_norm_layers: int
  point: op.OperatingPoint  # the site's, chosen on the copy's scores, decided at


def decode_scans(paths: Sequence[str], image_size: int) -> np.ndarray:
  """The scans as the served Transform decodes them: float32 [N, size, size, 1]."""
  images = []
  for path in paths:
    try:
      images.append(preprocessing.decode_image(
          tf.constant(tf.io.gfile.GFile(path, 'rb').read()), image_size).numpy())
    except tf.errors.InvalidArgumentError as e:
      raise AdaptationError(f'{path}: {printable.tf_error_reason(e.message)}') from None
  return np.stack(images)


def adapt_version(version_dir: str, site: str, scan_paths: Sequence[str], output_dir: str,
                  choose_point: Callable[[str], op.OperatingPoint],
                  replace: bool = False) -> AdaptedVersion:
  """Writes `version_dir` adapted to `site`'s scans as the folder `output_dir`.

  `choose_point` gets the adapted copy's folder before it is published and
  returns the site's operating point on its scores, which the copy then
  decides at and records as the site's threshold. An existing `output_dir`
  is replaced only with `replace`, once the new copy is complete.
  """
  if os.path.exists(output_dir) and not replace:
    raise AdaptationError(f'{output_dir} exists already')
  card = model_card.read_card(version_dir)
  if card is None:
    raise AdaptationError(f'{version_dir} has no model card to say which network it holds')
  model_config = configs.model_config_from(card.training_config)
  _, network = registry.build_model(model_config, len(card.training_config['class_names']))
  source = training_loop.warm_start_checkpoint(version_dir)
  kept = tf.train.load_checkpoint(source)
  graph = _ObjectGraph(kept)
  threshold_key = graph.key(signatures.THRESHOLD_VARIABLE)
  if not threshold_key:
    raise AdaptationError(f'{version_dir} holds its decision\'s threshold as a constant of '
                          'its graph, so a copy could not decide at the site\'s: push a '
                          'version exported by this checkout and adapt that one')
  training_loop.restore_network(network, source)
  layers = batch_norm_adaptation.adapt(network,
                                       decode_scans(scan_paths, model_config.image_size))
  if not layers:
    raise AdaptationError(f'{model_config.name} has no batch-norm layer to adapt')
  # Staged beside the output, so that one rename publishes it, and a copy
  # another command published meanwhile is refused rather than nested.
  parent = os.path.dirname(os.path.abspath(output_dir))
  os.makedirs(parent, exist_ok=True)
  with tempfile.TemporaryDirectory(dir=parent, prefix='.adapting-') as scratch:
    staging = os.path.join(scratch, 'version')
    shutil.copytree(version_dir, staging)
    adapted = training_loop.write_network(network, os.path.join(scratch, 'adapted'))
    values = _adapted_values(kept, graph, adapted, expected=2 * layers)
    staged_variables = training_loop.warm_start_checkpoint(staging)
    _save(values, staged_variables)
    point = choose_point(staging)
    values[threshold_key] = np.float32(point.threshold)
    _save(values, staged_variables)
    # Other sites' thresholds were set on the unadapted scores: they do not
    # hold for this copy, whose own site sets its threshold on its scores.
    site_points = operating_point.sites_path_in(staging)
    if os.path.exists(site_points):
      os.remove(site_points)
    operating_point.write_site(staging, point)
    model_card.write_card(staging, dataclasses.replace(card, adapted_to_site=site,
                                                       site_thresholds={}))
    try:
      if replace and os.path.exists(output_dir):
        os.rename(output_dir, os.path.join(scratch, 'replaced'))  # removed with `scratch`
      os.rename(staging, output_dir)
    except OSError:
      raise AdaptationError(f'{output_dir} exists already' if not replace else
                            f'{output_dir} was changed by another command meanwhile; '
                            'run again') from None
  return AdaptedVersion(output_dir, site, len(scan_paths), layers, point)


def _adapted_values(kept, graph: '_ObjectGraph', adapted: str,
                    expected: int) -> Dict[str, np.ndarray]:
  """The values of checkpoint `kept` (its reader), by key, with `adapted`'s of the network.

  `adapted` holds the same network (`training_loop.write_network`), but a
  SavedModel may store a variable under another key than its layer path (a
  layer shared by two calls puts the network's variables under
  `model/variables/N`), so each of `adapted`'s keys is followed, by its path of
  object names, through `kept`'s object graph (`graph`) to the key `kept` stores
  it under. The keys, shapes and object graph stay `kept`'s, so the SavedModel
  loads it as its own; only the batch-norm statistics can differ.
  """
  new = tf.train.load_checkpoint(adapted)
  values = {key: kept.get_tensor(key) for key in kept.get_variable_to_dtype_map()}
  changed = 0
  for key in new.get_variable_to_dtype_map():
    if key == _OBJECT_GRAPH:
      continue
    path = key.partition(_ATTRIBUTES)[0]
    stored_as = graph.key(path)
    if not stored_as:
      raise AdaptationError(f'the version\'s variables hold no {path}: not the network '
                            'its model card names')
    value = new.get_tensor(key)
    changed += not np.array_equal(values[stored_as], value)
    values[stored_as] = value
  if not 0 < changed <= expected:
    raise AdaptationError(f'{changed} of the version\'s variables changed, where only the '
                          f'{expected} batch-norm statistics may')
  return values


def _save(values: Dict[str, np.ndarray], target: str) -> None:
  """Writes `values` as the checkpoint `target`, under their keys as they are."""
  keys = sorted(values)
  tf.raw_ops.SaveV2(prefix=target, tensor_names=keys, shape_and_slices=[''] * len(keys),
                    tensors=[values[key] for key in keys])


class _ObjectGraph:
  """A checkpoint's object graph: where the value at a path of object names is stored."""

  def __init__(self, reader):
    self._graph = trackable_object_graph_pb2.TrackableObjectGraph()
    self._graph.ParseFromString(reader.get_tensor(_OBJECT_GRAPH))

  def key(self, path: str) -> str:
    """The checkpoint key of the variable at `path` (`model/layer-1/kernel`); '' if none."""
    node = self._graph.nodes[0]
    for name in path.split('/'):
      child = next((c.node_id for c in node.children if c.local_name == name), None)
      if child is None:
        return ''
      node = self._graph.nodes[child]
    return next((a.checkpoint_key for a in node.attributes if a.name == 'VARIABLE_VALUE'), '')
