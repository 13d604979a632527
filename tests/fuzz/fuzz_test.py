"""The fuzzer: random data roots and flags against the invariants (docs/invariants.md).

Two properties. `test_every_scanned_entry_has_one_outcome` scans a random
root as ImageExampleGen does (its `scan_sites`, then each image's fingerprint,
mask union and re-encoding) and checks that nothing but the two documented
errors escapes and that every entry and manifest row has one outcome. The
second runs `local_runner.main` with random flags and one or two random sites,
the pipeline replaced by the real ImageExampleGen executor alone (the audit,
no training), and checks the exit code, the one message and, when the audit
ran, its outcomes.

Profiles: `fast` (the default, in the unit tests) is derandomized, the same
few examples each run; `long` (`make fuzz`, FUZZ_EXAMPLES examples per
property, 200 by default) draws new ones from a printed seed, and a failure
is shrunk to a minimal root, printed with `@reproduce_failure`.
"""

import contextlib
import io
import os
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import pytest
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

import local_runner
from components.image_example_gen import component_config
from components.image_example_gen import decoder_check
from components.image_example_gen import executor
from contracts import configs
from dataset import data_audit
from dataset import data_root
from dataset import image_files
from orchestration import local
from tests.fuzz import data_roots
from tests.fuzz import invariants

_CLASSES = tuple(configs.DataConfig().class_names)
_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
settings.register_profile('fast', max_examples=25, derandomize=True, deadline=None,
                          suppress_health_check=_SLOW, print_blob=True)
settings.register_profile('long', max_examples=int(os.environ.get('FUZZ_EXAMPLES', 200)),
                          deadline=None, suppress_health_check=_SLOW, print_blob=True)
PROFILE = os.environ.get('FUZZ_PROFILE', 'fast')
# A runner example runs Beam; the fast profile takes a few of them.
_RUNNER_EXAMPLES = 6 if PROFILE == 'fast' else settings.get_profile('long').max_examples


def _columns(spec: data_roots.RootSpec) -> configs.ManifestColumns:
  if spec.manifest == 'jsonl':
    return configs.ManifestColumns(manifest='manifest.jsonl')
  return configs.ManifestColumns()


def _write(base: str, name: str, spec: data_roots.RootSpec) -> str:
  outside = os.path.join(base, 'outside.png')
  if not os.path.exists(outside):
    with open(outside, 'wb') as f:
      f.write(b'not in any site')
  root = os.path.join(base, name)
  data_roots.write(root, spec, outside)
  return root


@settings(settings.get_profile(PROFILE))
@given(spec=data_roots.root_specs())
def test_every_scanned_entry_has_one_outcome(spec):
  with tempfile.TemporaryDirectory() as base:
    root = _write(base, 'site', spec)
    site = configs.Site(configs.DEFAULT_SITE, root, _columns(spec))
    try:
      roots, scan = executor.scan_sites([site], list(_CLASSES))
    except data_audit.DataAuditError as e:
      assert str(e).strip() and '\n' not in str(e).strip(), str(e)
      return
    quarantined = list(scan.quarantined)
    labels, assignment, notes = {}, {}, []
    for image in scan.images:
      try:
        fp = image_files.fingerprint(roots, image, decoder_check.decoder_error)
        _, mask_notes = image_files.union_mask(
            roots, fp.mask_relpaths, (fp.width, fp.height),
            expect_lesion=fp.label != 'normal')
        if fp.needs_conversion:
          image_files.decodable_bytes(image_files.read_bytes(roots, fp.relpath), fp.relpath)
      except (image_files.InvalidImageError, image_files.UnreadableFileError) as e:
        quarantined.append(image_files.ExcludedFile(image.relpath, e.reason,
                                                    image.mask_relpaths))
        continue
      labels[fp.relpath], assignment[fp.relpath] = fp.label, 'train'
      notes.extend(data_audit.FileNote(fp.relpath, n) for n in (*fp.notes, *mask_notes))
    audit = data_audit.build(
        data_root=root, policy=data_audit.DataPolicy(_CLASSES, ('train',)),
        near_duplicate_max_bits=10, assignment=assignment, labels=labels, groups=[],
        quarantined=quarantined, ignored=scan.ignored, notes=notes,
        masks={i.relpath: i.mask_relpaths for i in scan.images})
    manifest = _columns(spec).manifest if spec.manifest else ''
    invariants.check_one_outcome_each(
        audit, invariants.expected_names(root, bool(manifest)),
        invariants.row_images(root, manifest) if manifest else set())
    if manifest:
      invariants.check_rows_accounted(audit, root, manifest)
    assert (not scan.images and not scan.quarantined) == any(
        e.file == image_files.SITE_FOLDER for e in scan.ignored)
    data_audit.markdown_report(audit)


class _AuditPassed(Exception):
  """The audit let the run go on: where the fuzzer stops it (no training)."""

  def __init__(self, audit: data_audit.DataAudit):
    super().__init__('audit passed')
    self.audit = audit


def _audit_only(config: configs.PipelineConfig):
  """`local.run` up to the audit: the real ImageExampleGen executor, nothing after."""
  examples = standard_artifacts.Examples()
  examples.uri = os.path.join(config.pipeline_root, 'ImageExampleGen', 'examples', '1')
  os.makedirs(examples.uri)
  output_config = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(
      splits=[example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=size)
              for name, size in config.data.splits.as_dict().items()]))
  exec_properties = {
      standard_component_specs.INPUT_BASE_KEY: config.data.data_root,
      standard_component_specs.OUTPUT_CONFIG_KEY: proto_utils.proto_to_json(output_config),
      standard_component_specs.CUSTOM_CONFIG_KEY: proto_utils.proto_to_json(
          component_config.to_custom_config(
              component_config.ImageExampleGenConfig.from_data_config(config.data))),
  }
  # No Beam arguments: DirectRunner in this process (beam_runners.local_direct_args).
  context = base_beam_executor.BaseBeamExecutor.Context()
  executor.Executor(context).Do(
      {}, {standard_component_specs.EXAMPLES_KEY: [examples]}, exec_properties)
  raise _AuditPassed(data_audit.read(examples.uri))


_FLAGS = st.lists(st.sampled_from((
    ('--strict',), ('--label-conflicts', 'fail'), ('--label-conflicts', 'keep'),
    ('--max-quarantined-fraction', '1'), ('--max-quarantined-fraction', '0'),
    ('--max-quarantined-fraction', 'x'), ('--splits', '60,20,20'), ('--splits', '1,1'),
    ('--epochs', '0'), ('--image-size', '33'), ('--model', 'seed_cnn'),
    ('--manifest-columns', 'default=bus_bra'), ('--no-cache',), ('--unknown',))),
    max_size=3)


@settings(settings.get_profile(PROFILE), max_examples=_RUNNER_EXAMPLES)
@given(first=data_roots.root_specs(), second=st.one_of(st.none(), data_roots.root_specs()),
       flags=_FLAGS, busi_dir=st.sampled_from(('', 'missing', 'site')))
def test_the_runner_stops_with_one_message_or_reaches_the_audit(first, second, flags,
                                                                busi_dir):
  with tempfile.TemporaryDirectory() as base, pytest.MonkeyPatch.context() as patch:
    sites = {'a': first} if second is None else {'a': first, 'b': second}
    roots = {name: _write(base, name, spec) for name, spec in sites.items()}
    columns = [f'{name}=' + os.path.join(base, 'jsonl.json')
               for name, spec in sites.items() if spec.manifest == 'jsonl']
    with open(os.path.join(base, 'jsonl.json'), 'w', encoding='utf-8') as f:
      f.write('{"manifest": "manifest.jsonl"}')
    argv = [a for name in sites for a in ('--data-root', f'{name}={roots[name]}'
                                          if len(sites) > 1 else roots[name])]
    argv += [a for c in columns for a in ('--manifest-columns', c if len(sites) > 1
                                          else c.replace('a=', 'default=', 1))]
    argv += ['--output-dir', os.path.join(base, 'out'), *[a for f in flags for a in f]]
    if busi_dir:
      patch.setenv(data_root.ENV_VAR, roots['a'] if busi_dir == 'site'
                   else os.path.join(base, 'missing'))
    patch.setattr(local, 'run', _audit_only)
    stderr, stdout = io.StringIO(), io.StringIO()
    audit = None
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
      try:
        code = local_runner.main(argv)
      except SystemExit as e:
        code = e.code
      except _AuditPassed as passed:
        code, audit = 0, passed.audit
    invariants.check_one_message(code, stderr.getvalue())
    if code == 2:
      assert not os.path.exists(os.path.join(base, 'out', 'tfx')), stderr.getvalue()
    if code == 1:
      assert 'Stopped at the data audit:' in stderr.getvalue(), stderr.getvalue()
      report = stderr.getvalue().split('Full report: ')[1].splitlines()[0]
      audit = data_audit.read(os.path.dirname(report))
    if audit is not None:
      _check_audit(audit, sites, roots)


def _check_audit(audit, sites, roots):
  named = len(sites) > 1
  expected, row_images = set(), set()
  for name, spec in sites.items():
    prefix = f'{name}/' if named else ''
    expected |= {prefix + n for n in invariants.expected_names(roots[name],
                                                               bool(spec.manifest))}
    if spec.manifest:
      manifest = _columns(spec).manifest
      row_images |= invariants.row_images(roots[name], manifest, prefix)
      invariants.check_rows_accounted(audit, roots[name], manifest, prefix)
  invariants.check_one_outcome_each(audit, expected, row_images)
