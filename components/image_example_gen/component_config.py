"""The ImageExampleGen settings that travel in FileBasedExampleGen's custom_config."""

import dataclasses
from typing import Any, Dict

from google.protobuf import any_pb2
from google.protobuf import json_format
from google.protobuf import struct_pb2
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils


@dataclasses.dataclass(frozen=True)
class ImageExampleGenConfig:
  near_duplicate_max_bits: int
  split_seed: int


def to_custom_config(config: ImageExampleGenConfig) -> example_gen_pb2.CustomConfig:
  struct = struct_pb2.Struct()
  struct.update(dataclasses.asdict(config))
  packed = any_pb2.Any()
  packed.Pack(struct)
  return example_gen_pb2.CustomConfig(custom_config=packed)


def from_exec_properties(exec_properties: Dict[str, Any]) -> ImageExampleGenConfig:
  custom_config = example_gen_pb2.CustomConfig()
  proto_utils.json_to_proto(
      exec_properties[standard_component_specs.CUSTOM_CONFIG_KEY], custom_config)
  struct = struct_pb2.Struct()
  custom_config.custom_config.Unpack(struct)
  values = json_format.MessageToDict(struct)
  return ImageExampleGenConfig(
      near_duplicate_max_bits=int(values['near_duplicate_max_bits']),
      split_seed=int(values['split_seed']))
