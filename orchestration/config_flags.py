"""The pipeline's flags, one definition for both runners, and the configs they build.

`local_runner.py` and `kubeflow_runner.py` take the same pipeline flags
(`add_pipeline_flags`), with the same spellings, choices and defaults, the
defaults read from the config dataclasses (contracts/configs.py); each runner
adds only where it runs (an output folder; an image, pods and a KFP API).
`FLAG_OF_FIELD` ties each flag to the config field it sets, so a value the
config refuses (`configs.ConfigError` names the field) is reported as the
flag the user typed.

Command-line syntax is parsed here, at the edge: `--data-root [NAME=]PATH`
and `--manifest-columns NAME=PRESET|FILE.json` become `configs.Site`s. Both
flags repeat, one per site. A bare PATH is the site named `default`. Every
mistake is one `SiteSpecError` line naming the flag: an invalid or repeated
name, a second bare path, columns for a site no `--data-root` names, an
unknown preset, a columns file that is not a JSON object of `ManifestColumns`
fields.
"""

import argparse
import dataclasses
import json
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

from contracts import configs
from dataset import data_audit
from dataset import sites as sites_lib
from models import registry
from orchestration import beam_runners

Built = TypeVar('Built')

DATA_ROOT_FLAG = '--data-root'
COLUMNS_FLAG = sites_lib.COLUMNS_FLAG

# --beam-runner's values, one spelling each, and the Beam runner each names.
BEAM_RUNNERS = {'direct': beam_runners.DIRECT_RUNNER,
                'portable': beam_runners.PORTABLE_RUNNER,
                'dataflow': beam_runners.DATAFLOW_RUNNER}

FLAG_OF_FIELD = {
    'model.name': '--model', 'model.image_size': '--image-size',
    'training.epochs': '--epochs', 'training.batch_size': '--batch-size',
    'training.target_malignant_sensitivity': '--target-sensitivity',
    'training.warm_start': '--warm-start',
    'training.warm_start_epochs': '--warm-start-epochs',
    'evaluation.min_accuracy': '--min-accuracy',
    'evaluation.min_malignant_recall': '--min-malignant-recall',
    'evaluation.regression_tolerance': '--regression-tolerance',
    'evaluation.min_site_malignant_examples': '--min-site-malignant-examples',
    'evaluation.slice_by_device': '--slice-by-device',
    'keep_served_versions': '--keep-versions',
    'enable_cache': '--no-cache',
    'data.max_quarantined_fraction': '--max-quarantined-fraction',
    'data.strict': '--strict',
    'data.label_conflicts': '--label-conflicts',
    'data.drift_policy': '--drift-policy',
    'data.newest_exports': '--newest-exports',
    'data.sites': DATA_ROOT_FLAG,
    'data.manifest_columns': COLUMNS_FLAG,
    **{f'data.splits.{name}': '--splits' for name in ('train', 'eval', 'test')},
}
# Flags that set no config field but the Beam arguments of PipelineConfig.
BEAM_FLAGS = ('--beam-runner', '--beam-arg', '--beam-workers', '--job-endpoint')
# Every pipeline flag, the same in both runners.
PIPELINE_FLAGS = tuple(sorted(set(FLAG_OF_FIELD.values()) | set(BEAM_FLAGS)))


class SiteSpecError(ValueError):
  """A `--data-root` or `--manifest-columns` value the run cannot use; one line."""


def parse_site_spec(text: str) -> Tuple[str, str]:
  """(site name, path) of `NAME=PATH`, or (`default`, PATH) of a bare PATH.

  Text before the first `=` that holds no path separator is a name (so
  `Busi=/data` is refused for its capital, not read as a folder called
  `Busi=`); a path with `=` in a folder name stays a bare path.
  """
  name, sep, path = text.partition('=')
  if not sep or os.sep in name or (os.altsep and os.altsep in name):
    if not text:
      raise SiteSpecError(f'{DATA_ROOT_FLAG} needs a folder, got an empty value')
    return configs.DEFAULT_SITE, text
  if not configs.SITE_NAME_PATTERN.fullmatch(name):
    raise SiteSpecError(f'{DATA_ROOT_FLAG} {text!r}: site names are lower-case letters, '
                        'digits and _ (e.g. bus_bra=PATH)')
  if not path:
    raise SiteSpecError(f'{DATA_ROOT_FLAG} {text!r}: site {name!r} needs a folder after =')
  return name, path


def parse_site_specs(texts: Sequence[str]) -> List[Tuple[str, str]]:
  """The (name, path) of every `--data-root`, in the order given; names distinct."""
  parsed = [parse_site_spec(text) for text in texts]
  seen: Dict[str, str] = {}
  for (name, path), text in zip(parsed, texts):
    if name in seen:
      hint = (f'; a bare folder is the site {configs.DEFAULT_SITE!r}, name the others '
              'NAME=PATH' if name == configs.DEFAULT_SITE else '')
      raise SiteSpecError(f'{DATA_ROOT_FLAG}: site {name!r} given twice ({seen[name]!r} '
                          f'and {text!r}){hint}')
    seen[name] = text
  return parsed


def parse_columns_spec(text: str) -> Tuple[str, configs.ManifestColumns]:
  """(site name, columns) of `NAME=PRESET` or `NAME=FILE.json`."""
  name, sep, value = text.partition('=')
  if not sep or not value:
    raise SiteSpecError(f'{COLUMNS_FLAG} takes NAME=PRESET or NAME=FILE.json (presets: '
                        f'{", ".join(configs.MANIFEST_PRESETS)}), got {text!r}')
  if value in configs.MANIFEST_PRESETS:
    return name, configs.MANIFEST_PRESETS[value]
  if not value.endswith('.json'):
    raise SiteSpecError(f'{COLUMNS_FLAG} {text!r}: {value!r} is neither a preset ('
                        f'{", ".join(configs.MANIFEST_PRESETS)}) nor a .json file')
  try:
    with open(value, encoding='utf-8') as f:
      values = json.load(f)
  except (OSError, ValueError) as e:
    raise SiteSpecError(f'{COLUMNS_FLAG} {text!r}: cannot read {value} ({e})') from None
  if not isinstance(values, dict):
    raise SiteSpecError(f'{COLUMNS_FLAG} {text!r}: {value} must hold a JSON object of '
                        'ManifestColumns fields')
  try:
    return name, configs.ManifestColumns.from_dict(
        dict(dataclasses.asdict(configs.ManifestColumns()), **values))
  except configs.ConfigError as e:
    raise SiteSpecError(f'{COLUMNS_FLAG} {text!r}: {value}: {e.message}') from None
  except TypeError as e:
    raise SiteSpecError(f'{COLUMNS_FLAG} {text!r}: {value}: {e}') from None


def build_sites(site_texts: Sequence[str], columns_texts: Sequence[str]
                ) -> Tuple[configs.Site, ...]:
  """The sites of the flags, each with its columns (the default preset if none)."""
  specs = parse_site_specs(site_texts)
  names = [name for name, _ in specs]
  columns: Dict[str, configs.ManifestColumns] = {}
  for text in columns_texts:
    name, site_columns = parse_columns_spec(text)
    if name not in names:
      raise SiteSpecError(f'{COLUMNS_FLAG} {text!r}: no {DATA_ROOT_FLAG} names site '
                          f'{name!r} (sites: {", ".join(names)})')
    if name in columns:
      raise SiteSpecError(f'{COLUMNS_FLAG}: site {name!r} given columns twice')
    columns[name] = site_columns
  return tuple(configs.Site(name, path, columns.get(name, configs.ManifestColumns()))
               for name, path in specs)


def _split_ratios(text: str) -> configs.SplitConfig:
  try:
    train, eval_, test = (int(part) for part in text.split(','))
  except ValueError:
    raise argparse.ArgumentTypeError(
        f'--splits takes three whole numbers train,eval,test (e.g. 70,15,15), got {text!r}')
  if min(train, eval_, test) <= 0:
    raise argparse.ArgumentTypeError(f'--splits must all be positive, got {text!r}')
  return configs.SplitConfig(train, eval_, test)


def _fraction(text: str) -> float:
  try:
    value = float(text)
  except ValueError:
    value = -1.0
  if not 0.0 <= value <= 1.0:
    raise argparse.ArgumentTypeError(
        f'--max-quarantined-fraction takes a number from 0 to 1 (e.g. 0.05), got {text!r}')
  return value


def add_pipeline_flags(parser: argparse.ArgumentParser) -> None:
  """Adds every pipeline flag to `parser`, in groups; `check_pipeline_flags` reads them."""
  defaults = configs.PipelineConfig(pipeline_root='', serving_dir='')
  data = parser.add_argument_group('data')
  data.add_argument(DATA_ROOT_FLAG, action='append', default=[], metavar='[NAME=]PATH',
                    help='a folder with one sub-folder per class, or with a manifest '
                         '(see --manifest-columns); repeat as NAME=PATH for several '
                         'sites (a bare PATH is the site named default)')
  data.add_argument(COLUMNS_FLAG, action='append', default=[],
                    metavar='SITE=PRESET|FILE.json',
                    help='how SITE\'s manifest names its columns (repeatable; presets: '
                         f'{", ".join(configs.MANIFEST_PRESETS)}; default: '
                         f'{configs.ManifestColumns().manifest} with columns image, '
                         'label, mask, patient_id, device)')
  data.add_argument('--splits', type=_split_ratios, default=defaults.data.splits,
                    help='train,eval,test relative sizes (default 70,15,15)')
  data.add_argument('--max-quarantined-fraction', type=_fraction,
                    default=defaults.data.max_quarantined_fraction,
                    help='stop when a larger share of the files is unusable '
                         f'(default {defaults.data.max_quarantined_fraction}); see '
                         'data_audit.md in the examples')
  data.add_argument('--strict', action='store_true', help='stop on any unusable file')
  data.add_argument('--label-conflicts', choices=data_audit.LABEL_CONFLICT_POLICIES,
                    default=defaults.data.label_conflicts,
                    help='the same or near-same image under two classes: drop '
                         'the whole group (default), keep it, or fail the run')
  data.add_argument('--drift-policy', choices=configs.DRIFT_POLICIES,
                    default=defaults.data.drift_policy,
                    help='data that drifted from the served model\'s training data '
                         '(thresholds in schema/schema.pbtxt): warn (default) names '
                         'it in the summary; stop ends the run before training')
  data.add_argument('--newest-exports', type=int, default=defaults.data.newest_exports,
                    metavar='N',
                    help='a site laid out as dated exports (SITE/exports/YYYY-MM/) is '
                         'read whole (0, the default) or only its newest N exports')

  model = parser.add_argument_group('model and training')
  model.add_argument('--model', choices=registry.MODEL_CHOICES, default=defaults.model.name)
  model.add_argument('--image-size', type=int, default=None,
                     help='side of the square model input (default: ' + ', '.join(
                         f'{name} {registry.spec(name).image_size}'
                         for name in registry.MODEL_CHOICES) + ')')
  model.add_argument('--epochs', type=int, default=None,
                     help='default: the model\'s own (' + ', '.join(
                         f'{name} {registry.spec(name).epochs}'
                         for name in registry.MODEL_CHOICES) + ')')
  model.add_argument('--batch-size', type=int, default=defaults.training.batch_size)
  model.add_argument('--target-sensitivity', type=float,
                     default=defaults.training.target_malignant_sensitivity,
                     help='malignant sensitivity the served decision\'s threshold is '
                          'chosen for on the eval split (default '
                          f'{defaults.training.target_malignant_sensitivity})')
  model.add_argument('--warm-start', action='store_true',
                     help='start from the served model\'s weights when it is of the same '
                          'family, image size and classes (else train from scratch, '
                          'saying why), for --warm-start-epochs')
  model.add_argument('--warm-start-epochs', type=int,
                     default=defaults.training.warm_start_epochs,
                     help='epochs of a warm-started run (default '
                          f'{defaults.training.warm_start_epochs})')
  model.add_argument('--no-cache', action='store_true',
                     help='rerun every component instead of reusing cached results')

  blessing = parser.add_argument_group('blessing and serving')
  _add_evaluation_flags(blessing)
  blessing.add_argument('--keep-versions', type=int, default=defaults.keep_served_versions,
                        help='model versions kept in the serving directory '
                             f'(default {defaults.keep_served_versions})')

  beam = parser.add_argument_group('beam')
  beam.add_argument('--beam-runner', choices=tuple(BEAM_RUNNERS), default='direct',
                    help="direct (default): Beam's DirectRunner, see --beam-workers; "
                         "portable: Beam's PortableRunner at --job-endpoint (a Flink or "
                         'Spark job server); dataflow: Google Cloud Dataflow (Kubeflow '
                         'only; its workers run the pipeline image)')
  beam.add_argument('--beam-arg', action='append', default=[], metavar='--FLAG=VALUE',
                    help='Beam pipeline option passed through (repeatable), '
                         'e.g. --beam-arg=--project=my-project')
  beam.add_argument('--beam-workers', type=int, default=1,
                    help='DirectRunner worker processes, per run or per Kubeflow pod (1, '
                         'the default: Beam runs in the process; 0: one per core). On '
                         'BUSI, in-process Beam measured 2.3x less CPU and half the peak '
                         'memory (bench/README.md)')
  beam.add_argument('--job-endpoint', metavar='HOST:PORT',
                    help='for --beam-runner portable: the Flink or Spark job server, or '
                         f'{beam_runners.EMBEDDED_JOB_SERVICE} (the local default) for '
                         'Beam\'s own, in the local runner\'s process')


def check_pipeline_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
  """The checks no single flag can make; sets `args.sites`. Exits through `parser.error`."""
  if args.manifest_columns and not args.data_root:
    parser.error(f'{COLUMNS_FLAG} needs the {DATA_ROOT_FLAG} of its site')
  try:
    args.sites = build_sites(args.data_root, args.manifest_columns)
  except SiteSpecError as e:
    parser.error(str(e))
  if args.beam_workers < 0:
    parser.error(f'--beam-workers must be 0 (one per core) or more, got {args.beam_workers}')
  if args.job_endpoint and args.beam_runner != 'portable':
    parser.error('--job-endpoint applies to --beam-runner portable only')
  model_spec = registry.spec(args.model)
  # A size below the floor gets ModelConfig's own message; this check is for the rest.
  if (args.image_size is not None and args.image_size > 0
      and args.image_size % model_spec.image_size_multiple):
    parser.error(f'--image-size must be a multiple of {model_spec.image_size_multiple} '
                 f'for {args.model}, got {args.image_size}')


def data_config(args: argparse.Namespace, sites: Sequence[configs.Site]) -> configs.DataConfig:
  """The data rules of the flags, reading `sites`."""
  return sites_lib.with_sites(
      dataclasses.replace(configs.DataConfig(), splits=args.splits,
                          max_quarantined_fraction=args.max_quarantined_fraction,
                          strict=args.strict, label_conflicts=args.label_conflicts,
                          drift_policy=args.drift_policy,
                          newest_exports=args.newest_exports),
      sites)


def model_config(args: argparse.Namespace) -> configs.ModelConfig:
  return dataclasses.replace(
      configs.ModelConfig(), name=args.model,
      image_size=(registry.spec(args.model).image_size
                  if args.image_size is None else args.image_size))


def training_config(args: argparse.Namespace) -> configs.TrainingConfig:
  return dataclasses.replace(
      configs.TrainingConfig(),
      epochs=registry.spec(args.model).epochs if args.epochs is None else args.epochs,
      batch_size=args.batch_size, target_malignant_sensitivity=args.target_sensitivity,
      warm_start=args.warm_start, warm_start_epochs=args.warm_start_epochs)


def _add_evaluation_flags(parser) -> None:
  """Adds the blessing flags to `parser` (an argument group); `evaluation_config` reads them."""
  defaults = configs.EvaluationConfig()
  parser.add_argument('--min-accuracy', type=float, default=defaults.min_accuracy,
                      help=f'floor on test accuracy (default {defaults.min_accuracy})')
  parser.add_argument('--min-malignant-recall', type=float,
                      default=defaults.min_malignant_recall,
                      help='floor on malignant sensitivity '
                           f'(default {defaults.min_malignant_recall})')
  parser.add_argument('--regression-tolerance', type=float,
                      default=defaults.regression_tolerance,
                      help='how far below the served model a candidate may fall')
  parser.add_argument('--min-site-malignant-examples', type=int,
                      default=defaults.min_site_malignant_examples,
                      help='a site with at least this many malignant test scans must '
                           'meet --min-malignant-recall and not regress there '
                           f'(default {defaults.min_site_malignant_examples})')
  parser.add_argument('--slice-by-device', action='store_true',
                      help='also evaluate per scanner (device) and per site x device')


def evaluation_config(args: argparse.Namespace) -> configs.EvaluationConfig:
  """The blessing rules of `add_evaluation_flags`' flags; the config checks them."""
  return configs.EvaluationConfig(
      min_accuracy=args.min_accuracy, min_malignant_recall=args.min_malignant_recall,
      regression_tolerance=args.regression_tolerance,
      min_site_malignant_examples=args.min_site_malignant_examples,
      slice_by_device=args.slice_by_device)


def config_or_message(program: str, build: Callable[[], Built]
                      ) -> Tuple[Optional[Built], Optional[str]]:
  """(what `build` returns, None), or (None, one line naming the flag at fault).

  A field no flag sets is named as the config field itself.
  """
  try:
    return build(), None
  except configs.ConfigError as e:
    return None, f'{program}: error: {FLAG_OF_FIELD.get(e.field, e.field)} {e.message}'
