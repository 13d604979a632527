"""The duplicate audit on the real BUSI folder (skipped where it is absent).

BUSI files one scan as both `benign (433).png` and `malignant (145).png`; the
audit must find that conflict, drop both copies under the default policy, and
list it in the report with the near-duplicate groups. Decoding the 780 images
for their hashes takes ~10 s; no Beam pipeline runs here.

The runner's default folders are relative to the working directory, and the
shared one (`../shared/data/busi`) is found only from a checkout that sits right
beside it: from a git worktree or a clone one level deeper this file always
skipped. So besides `$BUSI_DIR` and those defaults, the shared folder is looked
for above this file, at every level.
"""

import os
import pathlib
from typing import Optional

import pytest

from components.image_example_gen import component_config
from contracts import configs
from dataset import data_audit
from dataset import data_root
from dataset import image_files
from dataset import split_plan

_SHARED_BUSI = os.path.join('shared', 'data', 'busi', 'Dataset_BUSI_with_GT')


def _find_busi() -> Optional[str]:
  found = data_root.find_data_root()
  if found:
    return found
  for folder in pathlib.Path(__file__).resolve().parents:
    if (folder / _SHARED_BUSI).is_dir():
      return str(folder / _SHARED_BUSI)
  return None


_BUSI = _find_busi()
_KNOWN_CONFLICT = ['benign/benign (433).png', 'malignant/malignant (145).png']


@pytest.fixture(scope='module')
def busi_audit():
  if _BUSI is None:
    pytest.skip(f'BUSI is not on this machine: set ${data_root.ENV_VAR}, or put it in '
                f'{data_root.DEFAULT_DIRS[0]} or {_SHARED_BUSI} above the checkout')
  data = configs.DataConfig()
  config = component_config.ImageExampleGenConfig.from_data_config(data)
  scan = image_files.scan_folder(_BUSI, data.class_names)
  fingerprints = [image_files.fingerprint(_BUSI, image) for image in scan.images]
  plan = split_plan.plan_splits(fingerprints, data.splits.as_dict(),
                                data.near_duplicate_max_bits, data.split_seed,
                                data.label_conflicts)
  policy = config.data_policy(list(data.splits.as_dict()))
  audit = data_audit.build(
      data_root=_BUSI, policy=policy, near_duplicate_max_bits=data.near_duplicate_max_bits,
      assignment=plan.splits(), labels=plan.labels, groups=plan.groups,
      quarantined=[*scan.quarantined, *plan.dropped], ignored=scan.ignored, notes=[])
  data_audit.enforce(audit, policy, 'data_audit.md')
  return audit


def test_the_known_conflict_is_found_and_dropped(busi_audit):
  conflicts = [[m.file for m in g.files] for g in busi_audit.label_conflicts]
  assert _KNOWN_CONFLICT in conflicts
  exact = [[m.file for m in g.files] for g in busi_audit.exact_duplicate_groups]
  assert _KNOWN_CONFLICT in exact
  reasons = {q.file: q.reason for q in busi_audit.quarantined}
  for relpath in _KNOWN_CONFLICT:
    assert reasons[relpath].startswith('label conflict')
  assert 'benign/benign (433).png (with benign/benign (433)_mask.png)' in (
      data_audit.markdown_report(busi_audit))


def test_near_duplicate_groups_are_listed_with_their_labels(busi_audit):
  groups = busi_audit.near_duplicate_groups
  assert len(groups) > 100
  report = data_audit.markdown_report(busi_audit)
  assert f'## Near-duplicate groups ({len(groups)})' in report
  assert 'benign/benign (433).png (benign), malignant/malignant (145).png (malignant)' in report


def test_everything_else_is_ingested_within_the_default_policy(busi_audit):
  assert busi_audit.ingested + len(busi_audit.quarantined) == 780
  assert busi_audit.quarantined_fraction <= configs.DataConfig().max_quarantined_fraction
  assert {q.reason.split(':')[0] for q in busi_audit.quarantined} == {'label conflict'}
