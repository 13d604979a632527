"""docs/parameters.md is the truth: each parameter reaches exactly the components it names.

Each field of `PipelineConfig` is changed on its own, the pipeline is built
again, and every execution parameter of every component (JSON and protos read
down to their leaves), and the pipeline's own settings, are compared with the
default build's: what changed must be what the table names, nothing more, nothing
less. The run parameters of a compiled package must be the rows marked so, each
at the execution parameter its row names.
"""

import dataclasses
import json
import os
import re
from typing import Any, Dict, Iterator, Set, Tuple

from google.protobuf import json_format
from google.protobuf import message
import pytest
from tfx.orchestration import data_types

from contracts import configs
from pipeline import pipeline as pipeline_lib
from pipeline import run_parameters

_TABLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      'docs', 'parameters.md')
# The pipeline's own settings, beside the components' execution parameters.
_PIPELINE = 'Pipeline'
# Another valid value for the fields whose type does not give one.
_OTHER_VALUES = {
    'data.class_names': ('normal', 'benign', 'malignant'),
    'data.label_conflicts': 'keep',
    'data.drift_policy': 'stop',
    'model.name': 'busi_net',
    'evaluation.eval_split': 'eval',
    'beam_pipeline_args': ('--direct_num_workers=2',),
}


def _base() -> configs.PipelineConfig:
  return configs.PipelineConfig('/pipeline_root', '/serving', metadata_path='/metadata.sqlite',
                                data=configs.DataConfig(data_root='/data'))


def _leaves(value: Any, prefix: str) -> Iterator[Tuple[str, Any]]:
  """(path, value) of every leaf of a dataclass (nested ones too)."""
  for field in dataclasses.fields(value):
    inner = getattr(value, field.name)
    path = f'{prefix}{field.name}'
    if dataclasses.is_dataclass(inner):
      yield from _leaves(inner, f'{path}.')
    else:
      yield path, inner


def _other_value(path: str, value: Any) -> Any:
  if path in _OTHER_VALUES:
    return _OTHER_VALUES[path]
  if isinstance(value, bool):
    return not value
  if isinstance(value, int):
    return value + 1
  if isinstance(value, float):
    return value / 2 if value else 0.5
  if isinstance(value, str) or value is None:
    return f'{value or ""}/other'
  raise AssertionError(f'no other value for {path} = {value!r}: add one to _OTHER_VALUES')


def _with(config: Any, path: str, value: Any) -> Any:
  head, _, rest = path.partition('.')
  inner = value if not rest else _with(getattr(config, head), rest, value)
  return dataclasses.replace(config, **{head: inner})


def _sites_instead_of_the_root(config: configs.PipelineConfig) -> configs.PipelineConfig:
  return dataclasses.replace(config, data=dataclasses.replace(
      config.data, data_root='', sites=(configs.Site('busi', '/data'),)))


def _flatten(value: Any, path: str, out: Dict[str, Any]) -> Dict[str, Any]:
  """Leaves of protos, JSON text, dicts and lists, under dotted paths."""
  if isinstance(value, message.Message):
    value = json_format.MessageToDict(value, preserving_proto_field_name=True)
  elif isinstance(value, str) and value[:1] in '[{':
    try:
      value = json.loads(value)
    except ValueError:
      pass  # text that only starts like JSON, e.g. a path template '{image}'
  if isinstance(value, dict):
    for key, inner in value.items():
      _flatten(inner, f'{path}.{key}', out)
  elif isinstance(value, (list, tuple)):
    for index, inner in enumerate(value):
      _flatten(inner, f'{path}[{index}]', out)
  else:
    out[path] = value
  return out


def _landing(config: configs.PipelineConfig, parameters=None) -> Dict[str, Any]:
  """`Component.execution_parameter...leaf` -> value, for the whole built pipeline."""
  pipeline = pipeline_lib.create_pipeline(config, parameters)
  found = {}
  for component in pipeline.components:
    for name, value in component.exec_properties.items():
      _flatten(value, f'{component.id}.{name}', found)
  _flatten({'pipeline_name': pipeline.pipeline_info.pipeline_name,
            'pipeline_root': pipeline.pipeline_info.pipeline_root,
            'enable_cache': pipeline.enable_cache,
            'metadata_connection_config': pipeline.metadata_connection_config,
            'beam_pipeline_args': list(pipeline.beam_pipeline_args)}, _PIPELINE, found)
  return found


def _table() -> Dict[str, Tuple[Set[str], bool]]:
  """parameter -> ({`Component.execution_parameter`}, is a run parameter)."""
  rows = {}
  with open(_TABLE, encoding='utf-8') as f:
    for line in f:
      cells = [cell.strip() for cell in line.strip().strip('|').split('|')]
      if len(cells) == 3 and cells[0].startswith('`'):
        rows[cells[0].strip('`')] = (set(re.findall(r'`([^`]+)`', cells[1])),
                                     cells[2] == 'yes')
  return rows


_PARAMETERS = [path for path, _ in _leaves(_base(), '')]


def test_the_table_has_one_row_per_parameter():
  assert sorted(_table()) == sorted(_PARAMETERS)


@pytest.mark.parametrize('path', _PARAMETERS)
def test_a_parameter_reaches_exactly_where_the_table_says(path):
  base = _base()
  if path == 'data.sites':
    changed_config = _sites_instead_of_the_root(base)
  else:
    changed_config = _with(base, path, _other_value(path, dict(_leaves(base, ''))[path]))
  before, after = _landing(base), _landing(changed_config)
  changed = {'.'.join(key.split('.')[:2]).split('[')[0]
             for key in set(before) | set(after) if before.get(key) != after.get(key)}
  assert changed == _table()[path][0]


def test_the_run_parameters_are_the_rows_marked_so_each_where_its_row_says():
  config = _base()
  landing = _landing(config, run_parameters.runtime(config))
  runtime = {key: value.name for key, value in landing.items()
             if isinstance(value, data_types.RuntimeParameter)}
  marked = {path: places for path, (places, is_run_parameter) in _table().items()
            if is_run_parameter}
  assert {name: {key} for key, name in runtime.items()} == {
      path.split('.')[-1]: places for path, places in marked.items()}
