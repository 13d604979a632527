"""The ImageExampleGen settings that travel in FileBasedExampleGen's custom_config."""

import dataclasses
from typing import Any, Dict, Sequence, Tuple

from google.protobuf import any_pb2
from google.protobuf import json_format
from google.protobuf import struct_pb2
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from contracts import configs
from dataset import data_audit


@dataclasses.dataclass(frozen=True)
class ImageExampleGenConfig:
  """The `DataConfig` fields the executor reads, and where the served model is.

  Each field but `served_model_dir` has a field of that name in `DataConfig`.
  """
  near_duplicate_max_bits: int
  split_seed: int
  class_names: Tuple[str, ...]
  max_quarantined_fraction: float
  strict: bool
  label_conflicts: str
  # The named sites; none: `input_base` is the one site, named default.
  sites: Tuple[configs.Site, ...] = ()
  # Sites laid out as dated exports: read all (0) or the newest this many.
  newest_exports: int = 0
  # TF Serving's model directory: the served version's split ledger keeps old
  # images in their splits (dataset/split_ledger.py); '' plans splits afresh.
  served_model_dir: str = ''

  @classmethod
  def from_data_config(cls, data: configs.DataConfig,
                       served_model_dir: str = '') -> 'ImageExampleGenConfig':
    return _from_values(cls, {**{field.name: getattr(data, field.name)
                                 for field in dataclasses.fields(cls)
                                 if field.name != 'served_model_dir'},
                              'served_model_dir': served_model_dir})

  def site_list(self, input_base: str) -> Tuple[configs.Site, ...]:
    """The sites to read: the named ones, or `input_base` as the default site."""
    return self.sites or (configs.Site(configs.DEFAULT_SITE, input_base),)

  def data_policy(self, split_names: Sequence[str]) -> data_audit.DataPolicy:
    return data_audit.DataPolicy(
        class_names=self.class_names,
        split_names=tuple(split_names),
        max_quarantined_fraction=self.max_quarantined_fraction,
        strict=self.strict,
        label_conflicts=self.label_conflicts)


def to_custom_config(config: ImageExampleGenConfig) -> example_gen_pb2.CustomConfig:
  struct = struct_pb2.Struct()
  struct.update(dict(dataclasses.asdict(config), class_names=list(config.class_names),
                     sites=[dataclasses.asdict(site) for site in config.sites]))
  packed = any_pb2.Any()
  packed.Pack(struct)
  return example_gen_pb2.CustomConfig(custom_config=packed)


def from_exec_properties(exec_properties: Dict[str, Any]) -> ImageExampleGenConfig:
  custom_config = example_gen_pb2.CustomConfig()
  proto_utils.json_to_proto(
      exec_properties[standard_component_specs.CUSTOM_CONFIG_KEY], custom_config)
  struct = struct_pb2.Struct()
  custom_config.custom_config.Unpack(struct)
  return _from_values(ImageExampleGenConfig, json_format.MessageToDict(struct))


def _from_values(cls, values: Dict[str, Any]) -> ImageExampleGenConfig:
  """Each field's value as its declared type (a protobuf Struct holds every
  number as a float, every list as a list and every dataclass as a dict)."""
  return cls(**{field.name: _typed(field.type, values[field.name])
                for field in dataclasses.fields(cls) if field.name in values})


def _typed(kind, value):
  if kind == Tuple[str, ...]:
    return tuple(value)
  if kind == Tuple[configs.Site, ...]:
    return tuple(site if isinstance(site, configs.Site) else configs.Site(
        name=site['name'], root=site['root'],
        columns=configs.ManifestColumns(**site['columns'])) for site in value)
  return kind(value)
