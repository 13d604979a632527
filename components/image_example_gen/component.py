"""ImageExampleGen: a FileBasedExampleGen whose executor reads image folders.

Building on FileBasedExampleGen keeps its driver's contract: the input folder
is fingerprinted, so a changed, added or removed image invalidates the cached
ExampleGen run (and everything downstream), while an unchanged folder is not
read again. The fingerprint itself is the folder's own (see driver.py).
"""

from typing import Optional, Union

from tfx.components import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.orchestration import data_types
from tfx.proto import example_gen_pb2

from components.image_example_gen import component_config
from components.image_example_gen import driver
from components.image_example_gen import executor
from contracts import configs

# Every file one level below a class folder, as FileBasedExampleGen's input.
_FILES_PATTERN = '*/*'


class ImageExampleGen(FileBasedExampleGen):
  DRIVER_CLASS = driver.ImageFolderDriver


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
    served_model_dir: str = '') -> ImageExampleGen:
  """Reads the images below `input_base` (a run parameter on Kubeflow).

  Default: `default_input_base(data)`. Images the model served from
  `served_model_dir` was trained on keep their splits.
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
      custom_executor_spec=executor_spec.BeamExecutorSpec(executor.Executor))
