"""The ImageExampleGen settings that travel in FileBasedExampleGen's custom_config."""

import dataclasses
from typing import Any, Dict, Sequence, Tuple

from google.protobuf import any_pb2
from google.protobuf import json_format
from google.protobuf import struct_pb2
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from dataset import data_audit
from contracts import configs


@dataclasses.dataclass(frozen=True)
class ImageExampleGenConfig:
  near_duplicate_max_bits: int
  split_seed: int
  class_names: Tuple[str, ...]
  max_quarantined_fraction: float
  strict: bool
  label_conflicts: str

  @classmethod
  def from_data_config(cls, data: configs.DataConfig) -> 'ImageExampleGenConfig':
    return cls(near_duplicate_max_bits=data.near_duplicate_max_bits,
               split_seed=data.split_seed,
               class_names=tuple(data.class_names),
               max_quarantined_fraction=data.max_quarantined_fraction,
               strict=data.strict,
               label_conflicts=data.label_conflicts)

  def data_policy(self, split_names: Sequence[str]) -> data_audit.DataPolicy:
    return data_audit.DataPolicy(
        class_names=self.class_names,
        split_names=tuple(split_names),
        max_quarantined_fraction=self.max_quarantined_fraction,
        strict=self.strict,
        label_conflicts=self.label_conflicts)


def to_custom_config(config: ImageExampleGenConfig) -> example_gen_pb2.CustomConfig:
  struct = struct_pb2.Struct()
  struct.update(dict(dataclasses.asdict(config), class_names=list(config.class_names)))
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
      split_seed=int(values['split_seed']),
      class_names=tuple(values['class_names']),
      max_quarantined_fraction=float(values['max_quarantined_fraction']),
      strict=bool(values['strict']),
      label_conflicts=values['label_conflicts'])
