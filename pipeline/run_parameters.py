"""The values a run may set without recompiling: data root, epochs, warm start, blessing rules.

A scheduled retraining reads another folder, trains longer or raises a floor
from one compiled package: on Kubeflow each of these is a TFX
`RuntimeParameter` (a pipeline parameter of the compiled spec, its default the
configured value), which a run or a recurring run may override. Each reaches
its component as a typed execution parameter of its own (ImageExampleGen's
`input_base`, the Trainer's `epochs` and `warm_start`, the Evaluator's floors
and tolerance), never inside the JSON of a `custom_config` or `eval_config`,
where a runtime parameter cannot be resolved. Local runs use the configured
values as they are.
"""

import dataclasses
import typing
from typing import Any, Mapping, Tuple, Union

from tfx.orchestration import data_types

from contracts import configs


@dataclasses.dataclass(frozen=True)
class RunParameters:
  """Each value as a component takes it: a plain value, or a runtime parameter.

  The field names are the pipeline parameters' names in a compiled package.
  """
  data_root: Union[str, data_types.RuntimeParameter]
  epochs: Union[int, data_types.RuntimeParameter]
  # 1: start from the served model's weights; 0: from the family's initial
  # weights. An int, as TFX's runtime parameters have no boolean type.
  warm_start: Union[int, data_types.RuntimeParameter]
  min_accuracy: Union[float, data_types.RuntimeParameter]
  min_malignant_recall: Union[float, data_types.RuntimeParameter]
  regression_tolerance: Union[float, data_types.RuntimeParameter]


NAMES: Tuple[str, ...] = tuple(field.name for field in dataclasses.fields(RunParameters))
# The configuration section each parameter's configured value is in.
_SECTIONS = {'data_root': 'data', 'epochs': 'training', 'warm_start': 'training',
             'min_accuracy': 'evaluation', 'min_malignant_recall': 'evaluation',
             'regression_tolerance': 'evaluation'}


def fixed(config: configs.PipelineConfig) -> RunParameters:
  """The configured values, for orchestrators without run parameters (local runs)."""
  evaluation = config.evaluation
  return RunParameters(
      data_root=config.data.data_root,
      epochs=config.training.epochs,
      warm_start=int(config.training.warm_start),
      # Floats, as the Evaluator's parameters are typed, also for a floor given as 0.
      min_accuracy=float(evaluation.min_accuracy),
      min_malignant_recall=float(evaluation.min_malignant_recall),
      regression_tolerance=float(evaluation.regression_tolerance))


def runtime(config: configs.PipelineConfig) -> RunParameters:
  """Each value as a runtime parameter whose default is the configured value."""
  return RunParameters(**{
      name: data_types.RuntimeParameter(name=name, ptype=type(value), default=value)
      for name, value in dataclasses.asdict(fixed(config)).items()})


def parse_value(name: str, text: str) -> Union[str, int, float]:
  """`text` as the type of parameter `name`; ValueError naming what is allowed."""
  if name not in NAMES:
    raise ValueError(f'unknown run parameter {name!r}; the package has {", ".join(NAMES)}')
  kind = typing.get_args(typing.get_type_hints(RunParameters)[name])[0]
  if name == 'warm_start' and text not in ('0', '1'):
    raise ValueError(f'run parameter warm_start takes 1 (start from the served model) or 0, '
                     f'got {text!r}')
  try:
    return kind(text)
  except ValueError:
    raise ValueError(f'run parameter {name} takes {kind.__name__} values, got {text!r}') from None


def with_values(config: configs.PipelineConfig,
                values: Mapping[str, Any]) -> configs.PipelineConfig:
  """`config` with run parameter values in place of the configured ones.

  Raises ConfigError for a value the configuration itself refuses (e.g. 0
  epochs), so a run is not started only to fail in its Trainer.
  """
  for name, value in values.items():
    if name == 'warm_start':
      value = bool(value)
    section = _SECTIONS[name]
    config = dataclasses.replace(config, **{section: dataclasses.replace(
        getattr(config, section), **{name: value})})
  return config
