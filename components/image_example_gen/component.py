"""ImageExampleGen: a FileBasedExampleGen whose executor reads image folders.

Building on FileBasedExampleGen keeps its driver's contract: the input folder
is fingerprinted, so a changed, added or removed image invalidates the cached
ExampleGen run (and everything downstream), while an unchanged folder is not
read again. The fingerprint itself is the folder's own (see driver.py).

Where no driver runs before the executor (the open-source KFP backend), the
fingerprint can be given as the `input_fingerprint` parameter: it is then part
of the task's inputs, which KFP's cache key holds, and the executor records
it on the examples as the driver would (components/data_fingerprint.py).
"""

from typing import Optional, Union

from tfx import types
from tfx.components import FileBasedExampleGen
from tfx.components.example_gen import utils as example_gen_utils
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.dsl.placeholder import placeholder
from tfx.orchestration import data_types
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.types.component_spec import ExecutionParameter

from components.image_example_gen import component_config
from components.image_example_gen import driver
from components.image_example_gen import executor
from contracts import configs

# Every file one level below a class folder, as FileBasedExampleGen's input.
_FILES_PATTERN = '*/*'


# TFX's name for ExampleGen's fingerprint of its input (exec property and
# custom property of the examples).
INPUT_FINGERPRINT_KEY = example_gen_utils.FINGERPRINT_PROPERTY_NAME


class ImageExampleGenSpec(standard_component_specs.FileBasedExampleGenSpec):
  PARAMETERS = {
      **standard_component_specs.FileBasedExampleGenSpec.PARAMETERS,
      INPUT_FINGERPRINT_KEY: ExecutionParameter(type=str, optional=True),
  }


class ImageExampleGen(FileBasedExampleGen):
  """FileBasedExampleGen + an optional `input_fingerprint` of the data it reads."""

  SPEC_CLASS = ImageExampleGenSpec
  DRIVER_CLASS = driver.ImageFolderDriver

  def __init__(self, input_base, input_config: example_gen_pb2.Input,
               output_config: example_gen_pb2.Output,
               custom_config: example_gen_pb2.CustomConfig,
               custom_executor_spec: executor_spec.ExecutorSpec,
               input_fingerprint: Optional[placeholder.Placeholder] = None):
    # FileBasedExampleGen.__init__ builds its own spec class; this is its spec,
    # with its default formats, and one parameter more.
    spec = ImageExampleGenSpec(
        input_base=input_base, input_config=input_config, output_config=output_config,
        custom_config=custom_config,
        output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
        output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
        input_fingerprint=input_fingerprint,
        examples=types.Channel(type=standard_artifacts.Examples))
    base_component.BaseComponent.__init__(self, spec=spec,
                                          custom_executor_spec=custom_executor_spec)


def default_input_base(data: configs.DataConfig) -> str:
  """The one data root, or the sites as `name=root;...`.

  FileBasedExampleGen needs an `input_base`: with one unnamed root it is that
  root (a Kubeflow run parameter may replace it); with named sites the
  executor and the driver read the sites from the custom config, and this
  string names them in ML Metadata and the run report.
  """
  if data.sites:
    return ';'.join(f'{site.name}={site.root}' for site in data.sites)
  return data.data_root


def image_example_gen(
    data: configs.DataConfig,
    input_base: Optional[Union[str, data_types.RuntimeParameter]] = None,
    served_model_dir: str = '',
    input_fingerprint: Optional[placeholder.Placeholder] = None) -> ImageExampleGen:
  """Reads the images below `input_base` (a run parameter on Kubeflow).

  Default: `default_input_base(data)`. Images the model served from
  `served_model_dir` was trained on keep their splits. `input_fingerprint`:
  an upstream task's fingerprint of the same data (`DataFingerprint`).
  """
  splits = [example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=size)
            for name, size in data.splits.as_dict().items()]
  return ImageExampleGen(
      input_base=default_input_base(data) if input_base is None else input_base,
      input_config=example_gen_pb2.Input(splits=[
          example_gen_pb2.Input.Split(name='images', pattern=_FILES_PATTERN)]),
      output_config=example_gen_pb2.Output(
          split_config=example_gen_pb2.SplitConfig(splits=splits)),
      custom_config=component_config.to_custom_config(
          component_config.ImageExampleGenConfig.from_data_config(data, served_model_dir)),
      custom_executor_spec=executor_spec.BeamExecutorSpec(executor.Executor),
      input_fingerprint=input_fingerprint)
