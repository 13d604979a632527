"""ImageExampleGen: a FileBasedExampleGen whose executor reads image folders.

Building on FileBasedExampleGen keeps its driver's contract: the input folder
is fingerprinted, so a changed, added or removed image invalidates the cached
ExampleGen run (and everything downstream), while an unchanged folder is not
read again. The fingerprint itself is the folder's own (see driver.py).
"""

from typing import Union

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


def image_example_gen(data: configs.DataConfig,
                      input_base: Union[str, data_types.RuntimeParameter]) -> ImageExampleGen:
  """Reads the class folders below `input_base` (a run parameter on Kubeflow)."""
  splits = [example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=size)
            for name, size in data.splits.as_dict().items()]
  return ImageExampleGen(
      input_base=input_base,
      input_config=example_gen_pb2.Input(splits=[
          example_gen_pb2.Input.Split(name='images', pattern=_FILES_PATTERN)]),
      output_config=example_gen_pb2.Output(
          split_config=example_gen_pb2.SplitConfig(splits=splits)),
      custom_config=component_config.to_custom_config(
          component_config.ImageExampleGenConfig.from_data_config(data)),
      custom_executor_spec=executor_spec.BeamExecutorSpec(executor.Executor))
