"""TF Serving's own configuration files, kept beside the model base directory.

TF Serving started with `--model_config_file` serves exactly the versions its
`models.config` lists (a `specific` version policy), under the labels it gives
them: `stable`, and `canary` while one is staged. Which model is in service is
then decided by one small file, not by which numbered folder is newest, so a
rollback or a promotion rewrites that file and moves no model files: a single
object write, atomic on local disks and on object stores alike. TF Serving
re-reads the file every `--model_config_file_poll_wait_seconds`.

A label moves in two writes (serving/serving_ops.py says why); between them
the new version is listed without a label (`loading`).

Beside it: `batching_parameters.txt` (`--batching_parameters_file`) and
`monitoring.config` (`--monitoring_config_file`, Prometheus), written with the
same values on every push so the three files always describe one server.
docs/serving.md has the `docker run` command that reads all three.
"""

import dataclasses
import os
import uuid
from typing import Optional, Tuple

from google.protobuf import text_format
import tensorflow as tf
from tensorflow_serving.config import model_server_config_pb2
from tfx.dsl.io import fileio

from contracts import serving

BATCHING_PARAMETERS_FILE = 'batching_parameters.txt'
MONITORING_CONFIG_FILE = 'monitoring.config'
PROMETHEUS_PATH = '/monitoring/prometheus/metrics'
# Where docs/serving.md mounts the serving directory inside the container.
CONTAINER_MODELS_DIR = '/models'


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
  """Server-side batching, sized from `make bench-serving` (bench/README.md).

  `serving_images` throughput keeps rising up to batch 32, the largest batch
  the bench measures (74, 116 and 172 images/s at 1, 8 and 32 on 2026-12-02),
  so that is the cap. Waiting for a batch to fill costs latency: 2 ms is a
  sixth of one image's p50 (12.1 ms), so a lone request is barely delayed. One
  batch thread per core of the bench machine (2); a batch already decodes its
  images in parallel.
  """
  max_batch_size: int = 32
  batch_timeout_micros: int = 2000
  num_batch_threads: int = 2
  max_enqueued_batches: int = 100
  allowed_batch_sizes: Tuple[int, ...] = (1, 8, 32)


@dataclasses.dataclass(frozen=True)
class ServedVersions:
  """The versions TF Serving is told to load, and the labels on them."""
  stable: int
  canary: Optional[int] = None
  # Listed without a label: loaded so that a label can move to it next.
  loading: Tuple[int, ...] = ()

  def labelled(self) -> Tuple[int, ...]:
    return tuple(sorted({self.stable, *([self.canary] if self.canary else [])}))

  def versions(self) -> Tuple[int, ...]:
    return tuple(sorted({*self.labelled(), *self.loading}))


class DamagedConfigError(ValueError):
  """`models.config` cannot be read back; `make serving ARGS=repair` rebuilds it."""


class ServingFileError(ValueError):
  """A file of the serving directory cannot be read or written; the message names it."""


# What fileio raises for a file it cannot read or write: TensorFlow's file
# system errors (a folder where a file belongs, a permission), or the OS's.
_FILE_ERRORS = (OSError, tf.errors.OpError)


def read_text(path: str) -> str:
  """The file's text; a file that cannot be read, or is not UTF-8, is named in the error."""
  try:
    with fileio.open(path, 'r') as f:
      return f.read()
  except UnicodeDecodeError as error:
    raise ServingFileError(f'{path}: not UTF-8 text ({error.reason} at byte '
                           f'{error.start})') from None
  except _FILE_ERRORS as error:
    raise ServingFileError(f'{path}: cannot read it '
                           f'({getattr(error, "message", None) or error})') from None


def config_dir(model_base_dir: str) -> str:
  """The folder holding the model base directory: the config files sit there."""
  return os.path.dirname(model_base_dir.rstrip('/'))


def container_base_path(model_base_dir: str) -> str:
  """The base path as TF Serving sees it.

  A local folder is mounted at /models in the container (docs/serving.md); an
  object-store path (gs://, s3://) is read by TF Serving directly.
  """
  if '://' in model_base_dir:
    return model_base_dir.rstrip('/')
  return f'{CONTAINER_MODELS_DIR}/{os.path.basename(model_base_dir.rstrip("/"))}'


def models_config(model_name: str, model_base_dir: str,
                  served: ServedVersions) -> model_server_config_pb2.ModelServerConfig:
  config = model_server_config_pb2.ModelServerConfig()
  model = config.model_config_list.config.add()
  model.name = model_name
  model.base_path = container_base_path(model_base_dir)
  model.model_platform = 'tensorflow'
  model.model_version_policy.specific.versions.extend(served.versions())
  model.version_labels[serving.STABLE_LABEL] = served.stable
  if served.canary:
    model.version_labels[serving.CANARY_LABEL] = served.canary
  return config


def batching_parameters_text(parameters: BatchingParameters) -> str:
  """TF Serving's BatchingParameters in text format (wrapper types: `{ value: }`)."""
  lines = [f'{name} {{ value: {getattr(parameters, name)} }}'
           for name in ('max_batch_size', 'batch_timeout_micros', 'num_batch_threads',
                        'max_enqueued_batches')]
  lines += [f'allowed_batch_sizes: {size}' for size in parameters.allowed_batch_sizes]
  return '\n'.join(lines) + '\n'


def write_file_atomically(path: str, text: str) -> None:
  """Writes a temporary sibling, then renames it over `path`.

  On a local disk the rename is atomic; on an object store it is one object's
  copy, which readers see whole or not at all.
  """
  temporary = os.path.join(os.path.dirname(path),
                           f'.{os.path.basename(path)}.tmp-{uuid.uuid4().hex}')
  try:
    with fileio.open(temporary, 'w') as f:
      f.write(text)
    fileio.rename(temporary, path, overwrite=True)
  except _FILE_ERRORS as error:
    if fileio.exists(temporary):
      fileio.remove(temporary)
    raise ServingFileError(f'{path}: cannot write it '
                           f'({getattr(error, "message", None) or error})') from None


def write_config_files(model_name: str, model_base_dir: str, served: ServedVersions,
                       batching: BatchingParameters = BatchingParameters()) -> None:
  """Writes the three files; `models.config` last, as it is what switches versions."""
  folder = config_dir(model_base_dir)
  fileio.makedirs(folder)
  write_file_atomically(os.path.join(folder, BATCHING_PARAMETERS_FILE),
                        batching_parameters_text(batching))
  write_file_atomically(  # Prometheus metrics on the REST port
      os.path.join(folder, MONITORING_CONFIG_FILE),
      f'prometheus_config {{\n  enable: true\n  path: "{PROMETHEUS_PATH}"\n}}\n')
  write_file_atomically(
      os.path.join(folder, serving.MODELS_CONFIG_FILE),
      text_format.MessageToString(models_config(model_name, model_base_dir, served)))


def read_served_versions(model_base_dir: str) -> Optional[ServedVersions]:
  """The labelled versions in `models.config`, or None when there is no such file.

  A file this module did not write (no `stable` label) is an error with the
  file named, not a silent fallback to some other version.
  """
  path = os.path.join(config_dir(model_base_dir), serving.MODELS_CONFIG_FILE)
  if not fileio.exists(path):
    return None
  try:
    text = read_text(path)
  except ServingFileError as error:
    raise DamagedConfigError(f'{error}; rebuild it from the kept versions and the '
                             'serving log with `make serving ARGS=repair`') from None
  config = model_server_config_pb2.ModelServerConfig()
  try:
    text_format.Parse(text, config)
  except text_format.ParseError as error:
    raise DamagedConfigError(
        f'{path}: not a TF Serving model config ({error}); rebuild it from the kept '
        f'versions and the serving log with `make serving ARGS=repair`') from None
  name = os.path.basename(model_base_dir.rstrip('/'))
  models = [m for m in config.model_config_list.config if m.name == name]
  if not models or serving.STABLE_LABEL not in models[0].version_labels:
    raise DamagedConfigError(
        f'{path}: no model {name!r} with a {serving.STABLE_LABEL!r} version label; '
        'rebuild it with `make serving ARGS=repair`')
  labels = models[0].version_labels
  served = ServedVersions(stable=labels[serving.STABLE_LABEL],
                          canary=labels.get(serving.CANARY_LABEL) or None)
  listed = models[0].model_version_policy.specific.versions
  return dataclasses.replace(
      served, loading=tuple(sorted(set(listed) - set(served.labelled()))))
