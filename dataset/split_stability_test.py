"""Splits stay put over time: with the served data's ledger, no old image changes split.

Fingerprints are built directly (random 64-bit difference hashes are 32 bits
apart on average, far beyond the 10 bits that make near-duplicates), so each
case controls exactly which images are new, joined, removed or linked.
"""

import collections
import hashlib
import random

import pytest

from dataset import group_split
from dataset import image_files
from dataset import split_plan

_RATIOS = {'train': 70, 'eval': 15, 'test': 15}
_CLASSES = ('benign', 'malignant', 'normal')
_MAX_BITS = 10


def _fingerprint(name, label, dhash, site='', patient=''):
  return image_files.ImageFingerprint(
      relpath=f'{site + "/" if site else ""}{label}/{name}.png', label=label,
      sha256=hashlib.sha256(f'{site}/{name}'.encode()).hexdigest(), dhash=dhash,
      height=64, width=64, mask_relpaths=(), site=site or 'default', patient_id=patient)


def _images(count, prefix, seed, site=''):
  rng = random.Random(seed)
  return [_fingerprint(f'{prefix}{i}', _CLASSES[i % 3], rng.getrandbits(64), site)
          for i in range(count)]


def _plan(fingerprints, ledger=None):
  return split_plan.plan_splits(fingerprints, _RATIOS, _MAX_BITS, 42, 'drop',
                                ledger=ledger or {})


def _moved(before, after):
  return sorted(path for path, split in before.splits().items()
                if path in after.splits() and after.splits()[path] != split)


def _near(fp, name, bits=(0, 7)):
  """A near-duplicate of `fp` (a few bits of its hash flipped), with new bytes."""
  dhash = fp.dhash
  for bit in bits:
    dhash ^= 1 << bit
  return _fingerprint(name, fp.label, dhash)


def test_700_groups_and_70_new_move_no_old_group_and_the_new_ones_are_stratified():
  old = _images(700, 'old', seed=1)
  first = _plan(old)
  assert len({group for group, _ in first.assignment.values()}) == 700
  grown = old + _images(70, 'new', seed=2)

  second = _plan(grown, ledger=first.ledger)

  assert _moved(first, second) == []
  new_splits = collections.Counter(
      split for path, split in second.splits().items() if 'new' in path)
  assert sum(new_splits.values()) == 70
  # Filling towards the shares: each split within one group per class of its share.
  counts = collections.Counter(second.splits().values())
  for split, ratio in _RATIOS.items():
    assert abs(counts[split] - 770 * ratio / 100) <= 3, counts


def test_without_the_ledger_the_same_growth_moves_old_groups():
  """Why the ledger is needed: the greedy fill alone reshuffles on growth."""
  old = _images(700, 'old', seed=1)
  grown = old + _images(70, 'new', seed=2)
  assert len(_moved(_plan(old), _plan(grown))) > 50


def test_a_new_near_duplicate_joins_its_group_in_the_group_s_split():
  old = _images(300, 'old', seed=3)
  first = _plan(old)
  # One new member per split, each joining a group of that split.
  targets = {split: next(fp for fp in old if first.splits()[fp.relpath] == split)
             for split in _RATIOS}
  joined = [_near(fp, f'copy-of-{split}') for split, fp in targets.items()]

  second = _plan(old + joined, ledger=first.ledger)

  assert _moved(first, second) == []
  for (split, fp), new in zip(targets.items(), joined):
    assert second.assignment[new.relpath] == (second.assignment[fp.relpath][0], split)


def test_a_new_image_of_a_known_patient_goes_to_the_patient_s_split():
  old = [_fingerprint(f'p{i}-a', _CLASSES[i % 3], dhash, patient=f'p{i}')
         for i, dhash in enumerate(random.Random(4).getrandbits(64) for _ in range(200))]
  first = _plan(old)
  rng = random.Random(5)
  later = [_fingerprint(f'p{i}-b', _CLASSES[i % 3], rng.getrandbits(64), patient=f'p{i}')
           for i in range(0, 200, 7)]

  second = _plan(old + later, ledger=first.ledger)

  assert _moved(first, second) == []
  for fp in later:
    assert second.splits()[fp.relpath] == first.splits()[fp.relpath.replace('-b', '-a')]


def test_removing_images_moves_none_of_the_rest_and_a_returning_image_gets_its_split():
  old = _images(400, 'old', seed=6)
  # Groups of two, so removing one member leaves a group whose id may change.
  pairs = [_near(fp, f'{fp.relpath.split("/")[1][:-4]}-twin') for fp in old[:100]]
  first = _plan(old + pairs)
  removed = {fp.relpath for fp in old[:100:2] + old[200:240]}
  kept = [fp for fp in old + pairs if fp.relpath not in removed]

  second = _plan(kept, ledger=first.ledger)
  assert _moved(first, second) == []
  third = _plan(old + pairs, ledger=second.ledger)
  assert third.splits() == first.splits()


def test_a_new_site_moves_no_old_image_and_spreads_its_classes_over_every_split():
  old = _images(300, 'old', seed=7, site='a')
  first = _plan(old)
  second = _plan(old + _images(150, 'img', seed=8, site='b'), ledger=first.ledger)

  assert _moved(first, second) == []
  site_b = collections.defaultdict(set)
  for path, split in second.splits().items():
    if path.startswith('b/'):
      site_b[path.split('/')[1]].add(split)
  assert site_b == {label: set(_RATIOS) for label in _CLASSES}


def test_a_new_image_linking_groups_of_two_splits_is_quarantined_and_the_old_stay():
  old = _images(300, 'old', seed=9)
  first = _plan(old)
  train = next(fp for fp in old if first.splits()[fp.relpath] == 'train')
  test = next(fp for fp in old if first.splits()[fp.relpath] == 'test')
  # New images stepping from train's hash to test's, at most 8 bits apart.
  differing = [b for b in range(64) if (train.dhash ^ test.dhash) >> b & 1]
  bridges, step = [], train.dhash
  for i, bit in enumerate(differing):
    step ^= 1 << bit
    if i % 8 == 7 or i == len(differing) - 1:
      bridges.append(_fingerprint(f'bridge{i}', train.label, step))
  test_near_train = _fingerprint('test-twin', test.label, test.dhash ^ 1)

  second = _plan(old + bridges + [test_near_train], ledger=first.ledger)

  assert _moved(first, second) == []
  reasons = {d.file: d.reason for d in second.dropped}
  assert set(reasons) == {fp.relpath for fp in bridges + [test_near_train]}
  assert all('already in the test and train splits' in r for r in reasons.values())


def test_a_ledger_split_the_run_does_not_have_is_planned_afresh():
  old = _images(60, 'old', seed=10)
  ledger = {fp.sha256: 'holdout' for fp in old}
  plan = _plan(old, ledger=ledger)
  assert set(plan.splits().values()) == set(_RATIOS)


def test_fixing_a_group_to_an_unknown_split_is_refused():
  with pytest.raises(ValueError, match='holdout'):
    group_split.assign_groups_to_splits([('g', 'benign')], _RATIOS, 42,
                                        fixed={'g': 'holdout'})
