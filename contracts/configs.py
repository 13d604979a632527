"""Every knob of the pipeline, in one place, as typed dataclasses.

Runners build a `PipelineConfig` (from flags or defaults) and hand it to
`pipeline.create_pipeline`; each value reaches the components that need it by
one path only: a typed execution parameter, or JSON in a `custom_config`
(docs/parameters.md has the table).
"""

import dataclasses
import glob
import hashlib
import os
import re
from typing import Any, Dict, Optional, Tuple

from contracts import features
from contracts import names

_PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA_DIR = os.path.join(_PROJECT_DIR, 'schema')

LABEL_CONFLICT_POLICIES: Tuple[str, ...] = ('drop', 'keep', 'fail')
# What a run does when its data drifted from the served model's (schema thresholds).
DRIFT_POLICIES: Tuple[str, ...] = ('warn', 'stop')
# The networks pool their input down several times; below this side there is
# nothing left to pool, above it one batch no longer fits in memory.
MIN_IMAGE_SIZE = 32
MAX_IMAGE_SIZE = 1024


class ConfigError(ValueError):
  """A configuration value outside what the pipeline can run with.

  `field` names the value as `<section>.<name>` (e.g. `training.epochs`), so a
  runner can name its own flag for it; the message says what is allowed.
  """

  def __init__(self, field: str, message: str):
    super().__init__(f'{field} {message}')
    self.field = field
    self.message = message


def _at_least(field: str, value: Any, lowest: int) -> None:
  if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
    raise ConfigError(field, f'must be at least {lowest} (a whole number), got {value!r}')


def _within(field: str, value: Any, low: float, high: float) -> None:
  if (isinstance(value, bool) or not isinstance(value, (int, float))
      or not low <= value <= high):
    raise ConfigError(field, f'must be a number from {low:g} to {high:g}, got {value!r}')


@dataclasses.dataclass(frozen=True)
class SplitConfig:
  """Relative sizes of the splits; groups of near-duplicates never straddle two."""
  train: int = 70
  eval: int = 15
  test: int = 15

  def __post_init__(self):
    for name, size in self.as_dict().items():
      _at_least(f'data.splits.{name}', size, 1)

  def as_dict(self) -> Dict[str, int]:
    return {'train': self.train, 'eval': self.eval, 'test': self.test}


# The site of a run that names one data root without a name.
DEFAULT_SITE = 'default'
# Site names become path prefixes and feature values: short, lower case, no spaces.
SITE_NAME_PATTERN = re.compile(r'[a-z0-9_]+')
# CSV with a header row, or JSON lines (one object per line).
MANIFEST_EXTENSIONS: Tuple[str, ...] = ('.csv', '.jsonl')


@dataclasses.dataclass(frozen=True)
class ManifestColumns:
  """How a site's manifest names each image's file, label, masks, patient, device
  and the radiologist's BI-RADS category.

  A site whose root holds `manifest` is read through it (dataset/manifest.py);
  any other site is a folder-per-class tree. The `image` column holds the
  image's path in the site and the `mask` column its masks' (several separated
  by `;`, none when empty), unless a path template builds them from the row:
  `{COLUMN}` is the column's value, `{COLUMN|removeprefix:X}` the value without
  a leading X (a mask template whose columns are empty gives no mask). An
  empty mask, patient, device or birads column name means the manifest has
  none. The BI-RADS category is what the radiologist read on the scan: the
  clinical baseline a model is compared with (blessing/radiologist_comparison.py).
  """
  manifest: str = 'manifest.csv'
  image: str = 'image'
  label: str = 'label'
  mask: str = 'mask'
  patient: str = 'patient_id'
  device: str = 'device'
  birads: str = ''
  image_path: str = ''
  mask_path: str = ''

  def __post_init__(self):
    for field in dataclasses.fields(self):
      value = getattr(self, field.name)
      if not isinstance(value, str):
        raise ConfigError('data.manifest_columns',
                          f'{field.name} must be a string, got {value!r}')
    for field in ('manifest', 'image', 'label'):
      if not getattr(self, field):
        raise ConfigError('data.manifest_columns', f'{field} must not be empty')
    if not self.manifest.endswith(MANIFEST_EXTENSIONS):
      raise ConfigError('data.manifest_columns', f'manifest must end in '
                        f'{" or ".join(MANIFEST_EXTENSIONS)}, got {self.manifest!r}')

  @property
  def image_template(self) -> str:
    return self.image_path or f'{{{self.image}}}'

  @property
  def mask_template(self) -> str:
    """'' when the manifest names no masks."""
    return self.mask_path or (f'{{{self.mask}}}' if self.mask else '')

  @classmethod
  def from_dict(cls, values: Dict[str, Any]) -> 'ManifestColumns':
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
      raise ConfigError('data.manifest_columns', f'has no field {", ".join(unknown)} '
                        f'(fields: {", ".join(f.name for f in dataclasses.fields(cls))})')
    return cls(**values)


MANIFEST_PRESETS: Dict[str, ManifestColumns] = {
    'default': ManifestColumns(),
    # BUS-BRA as published (Gomez-Flores et al. 2024): bus_data.csv, Images/, Masks/.
    'bus_bra': ManifestColumns(
        manifest='bus_data.csv', image='ID', label='Pathology', mask='',
        patient='Case', device='Device', birads='BIRADS', image_path='Images/{ID}.png',
        mask_path='Masks/mask_{ID|removeprefix:bus_}.png'),
}


@dataclasses.dataclass(frozen=True)
class Site:
  """One named data root (a hospital, a public dataset) and how to read it."""
  name: str
  root: str
  columns: ManifestColumns = ManifestColumns()

  def __post_init__(self):
    if not isinstance(self.name, str) or not SITE_NAME_PATTERN.fullmatch(self.name):
      raise ConfigError('data.sites', 'names must be lower-case letters, digits and '
                        f'_ (e.g. bus_bra), got {self.name!r}')
    if not self.root:
      raise ConfigError('data.sites', f'site {self.name!r} needs a data root')


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """What ExampleGen reads and how it groups near-duplicates.

  One data root (`data_root`, the site named `default`, read as a folder tree
  or through its manifest.csv) or several named `sites`, not both.
  """
  data_root: str = ''
  sites: Tuple[Site, ...] = ()
  class_names: Tuple[str, ...] = features.CLASS_NAMES
  splits: SplitConfig = SplitConfig()
  # Two images whose 64-bit difference hashes differ in at most this many bits
  # are treated as the same scan. 10 groups BUSI's re-annotated and re-cropped
  # copies without merging distinct patients (see dataset/perceptual_hash.py).
  near_duplicate_max_bits: int = 10
  # Seed of the group-to-split assignment; changing it reshuffles the splits.
  split_seed: int = 42
  # The run stops when more than this share of the files (images, stray masks
  # and other files in class folders) is quarantined as unusable.
  max_quarantined_fraction: float = 0.05
  # Stop on any quarantined file.
  strict: bool = False
  # A near-duplicate group filed under several classes: 'drop' all its members,
  # 'keep' them (the group goes to its majority class's split), or 'fail'.
  label_conflicts: str = 'drop'
  # Data that drifted from the served model's training data (components/
  # drift_check.py): 'warn' names it in the summary; 'stop' ends the run.
  drift_policy: str = 'warn'
  # A site laid out as dated exports (dataset/exports.py) is read whole (0) or
  # only its newest this many exports.
  newest_exports: int = 0

  def __post_init__(self):
    if self.sites and self.data_root:
      raise ConfigError('data.sites', 'and data_root exclude each other: name the '
                        f'root {self.data_root!r} as a site')
    site_names = [site.name for site in self.sites]
    repeated = sorted({name for name in site_names if site_names.count(name) > 1})
    if repeated:
      raise ConfigError('data.sites', f'must have distinct names, got {", ".join(repeated)} '
                        'more than once')
    if not self.class_names or len(set(self.class_names)) != len(self.class_names):
      raise ConfigError('data.class_names', 'must be distinct names, at least one, '
                        f'got {self.class_names!r}')
    _at_least('data.near_duplicate_max_bits', self.near_duplicate_max_bits, 0)
    if self.near_duplicate_max_bits > 64:
      raise ConfigError('data.near_duplicate_max_bits', 'must be at most 64 (the '
                        f'hash has 64 bits), got {self.near_duplicate_max_bits}')
    _at_least('data.split_seed', self.split_seed, 0)
    _at_least('data.newest_exports', self.newest_exports, 0)
    _within('data.max_quarantined_fraction', self.max_quarantined_fraction, 0, 1)
    if self.label_conflicts not in LABEL_CONFLICT_POLICIES:
      raise ConfigError('data.label_conflicts', f'must be one of '
                        f'{", ".join(LABEL_CONFLICT_POLICIES)}, got {self.label_conflicts!r}')
    if self.drift_policy not in DRIFT_POLICIES:
      raise ConfigError('data.drift_policy', f'must be one of '
                        f'{", ".join(DRIFT_POLICIES)}, got {self.drift_policy!r}')


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Which network to train and the input it sees.

  The defaults are the default family's (models/registry.py gives each family
  its own input side and epochs; bench/README.md has the comparisons).
  """
  name: str = 'lesion_net'
  image_size: int = 256
  dropout: float = 0.3

  def __post_init__(self):
    _at_least('model.image_size', self.image_size, MIN_IMAGE_SIZE)
    if self.image_size > MAX_IMAGE_SIZE:
      raise ConfigError('model.image_size', f'must be at most {MAX_IMAGE_SIZE}, '
                        f'got {self.image_size}')
    if not 0.0 <= self.dropout < 1.0:
      raise ConfigError('model.dropout', f'must be from 0 to below 1, got {self.dropout!r}')


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
  """How the network is fitted: schedule, batches, early stopping, seed."""
  # The learning rate decays to zero over `epochs` (cosine); the default is the
  # default family's. The eval loss is noisy on ~115 images, so the patience is
  # long enough for a run to reach the end of its schedule (bench/README.md has
  # the comparisons).
  epochs: int = 30
  batch_size: int = 32
  learning_rate: float = 1e-3
  early_stopping_patience: int = 30
  seed: int = 42
  # The malignant sensitivity the served decision's threshold is chosen for on
  # the eval split (models/operating_point.py).
  target_malignant_sensitivity: float = 0.90
  # Start from the served model's weights when it is of the same family, input
  # size and classes, and train `warm_start_epochs` instead of `epochs`
  # (docs/retraining.md, "Warm start"); otherwise the run trains from scratch.
  warm_start: bool = False
  warm_start_epochs: int = 10

  def __post_init__(self):
    _at_least('training.epochs', self.epochs, 1)
    _at_least('training.warm_start_epochs', self.warm_start_epochs, 1)
    if not isinstance(self.warm_start, bool):
      raise ConfigError('training.warm_start',
                        f'must be true or false, got {self.warm_start!r}')
    _at_least('training.batch_size', self.batch_size, 1)
    if not self.learning_rate > 0:
      raise ConfigError('training.learning_rate',
                        f'must be above 0, got {self.learning_rate!r}')
    _at_least('training.early_stopping_patience', self.early_stopping_patience, 0)
    _at_least('training.seed', self.seed, 0)
    if not 0.0 < self.target_malignant_sensitivity <= 1.0:
      raise ConfigError('training.target_malignant_sensitivity',
                        f'must be above 0 and at most 1, got '
                        f'{self.target_malignant_sensitivity!r}')


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
  """Blessing rules: absolute floors, plus no regression against the served model."""
  eval_split: str = 'test'
  min_accuracy: float = 0.80
  min_malignant_recall: float = 0.75
  # How much worse than the model in service a candidate may be (0 = not worse).
  regression_tolerance: float = 0.0
  # A site (the `site` feature) with at least this many malignant test scans
  # must meet the malignant-sensitivity floor and not regress against the
  # served model there; below it one missed cancer moves the rate by more than
  # any sensible tolerance, so the site is reported but not gated.
  min_site_malignant_examples: int = 10
  # Also slice the evaluation by scanner (`device`, and site x device).
  slice_by_device: bool = False

  def __post_init__(self):
    _within('evaluation.min_accuracy', self.min_accuracy, 0, 1)
    _within('evaluation.min_malignant_recall', self.min_malignant_recall, 0, 1)
    _within('evaluation.regression_tolerance', self.regression_tolerance, 0, 1)
    _at_least('evaluation.min_site_malignant_examples', self.min_site_malignant_examples, 1)
    if not isinstance(self.slice_by_device, bool):
      raise ConfigError('evaluation.slice_by_device',
                        f'must be true or false, got {self.slice_by_device!r}')


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  """Everything `create_pipeline` needs; runners only fill in paths and Beam."""
  pipeline_root: str
  serving_dir: str
  data: DataConfig = DataConfig()
  model: ModelConfig = ModelConfig()
  training: TrainingConfig = TrainingConfig()
  evaluation: EvaluationConfig = EvaluationConfig()
  pipeline_name: str = names.PIPELINE_NAME
  model_name: str = names.MODEL_NAME
  metadata_path: Optional[str] = None
  beam_pipeline_args: Tuple[str, ...] = ()
  enable_cache: bool = True
  # Versions kept in the serving directory; older ones are deleted on push.
  keep_served_versions: int = 5
  # The curated schema as the orchestrator's containers see it: this checkout
  # locally, the copy inside the image on Kubeflow.
  schema_file: str = os.path.join(SCHEMA_DIR, 'schema.pbtxt')

  def __post_init__(self):
    _at_least('keep_served_versions', self.keep_served_versions, 1)

  @property
  def model_serving_dir(self) -> str:
    """TF Serving's model base path: versions live in numbered folders below it."""
    return os.path.join(self.serving_dir, self.model_name)

  def transform_custom_config(self) -> Dict[str, Any]:
    """What Transform's `preprocessing_fn` reads: the class names and the input side.

    It and `trainer_custom_config` carry a fingerprint of the model code:
    Transform and Trainer name their functions by import path, so without it
    TFX's cache would reuse results of code that has since changed.
    """
    return {
        'class_names': list(self.data.class_names),
        'model': {'image_size': self.model.image_size},
        'models_code_sha256': models_code_fingerprint(),
    }

  def trainer_custom_config(self) -> Dict[str, Any]:
    """What the Trainer's `run_fn` reads, except TRAINER_PARAMETERS.

    Those are the Trainer's own execution parameters (run parameters on
    Kubeflow), which its executor adds (`with_trainer_parameters`).
    """
    return {
        'class_names': list(self.data.class_names),
        'model': dataclasses.asdict(self.model),
        'training': {name: value for name, value in dataclasses.asdict(self.training).items()
                     if name not in TRAINER_PARAMETERS},
        'models_code_sha256': models_code_fingerprint(),
    }


# The training fields that are the Trainer's own execution parameters (run
# parameters on Kubeflow), so they are never in its compiled custom_config.
TRAINER_PARAMETERS = ('epochs', 'warm_start')


# The code Transform and Trainer run: the model package and the contracts it reads.
_MODEL_CODE_PACKAGES = ('contracts', 'models')


def models_code_fingerprint() -> str:
  digest = hashlib.sha256()
  paths = sorted(path for package in _MODEL_CODE_PACKAGES
                 for path in glob.glob(os.path.join(_PROJECT_DIR, package, '*.py')))
  for path in paths:
    if not path.endswith('_test.py'):
      with open(path, 'rb') as f:
        digest.update(f.read())
  return digest.hexdigest()


def model_config_from(custom_config: Dict[str, Any]) -> ModelConfig:
  return ModelConfig(**custom_config['model'])


def training_config_from(custom_config: Dict[str, Any]) -> TrainingConfig:
  return TrainingConfig(**custom_config['training'])


def with_trainer_parameters(custom_config: Dict[str, Any], epochs: int,
                            warm_start: bool) -> Dict[str, Any]:
  """`trainer_custom_config` with TRAINER_PARAMETERS added; ConfigError names a bad value."""
  compiled = sorted(set(TRAINER_PARAMETERS) & set(custom_config['training']))
  if compiled:
    raise ValueError(f'The compiled training configuration has {", ".join(compiled)} of '
                     'its own; the Trainer\'s parameters are their only source.')
  training = TrainingConfig(**custom_config['training'], epochs=epochs, warm_start=warm_start)
  return {**custom_config, 'training': dataclasses.asdict(training)}


def resolved_trainer_config(config: PipelineConfig) -> Dict[str, Any]:
  """What `run_fn` reads when the Trainer's parameters are the configured values."""
  return with_trainer_parameters(config.trainer_custom_config(), config.training.epochs,
                                 config.training.warm_start)

