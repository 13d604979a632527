"""The data audit: what happened to every file, and whether the run may go on.

ImageExampleGen writes the audit beside its splits, as `data_audit.json` for
tools and `data_audit.md` for people: each file found is ingested, quarantined
(with the reason) or ignored (hidden files and the like, with the reason);
exact and near-duplicate groups are listed with their labels; label conflicts
(the same or near-same scan filed under two classes) are resolved by policy.

The run-level policy lives here too, so that the executor only gathers facts:
`enforce` raises `DataAuditError` when more than the allowed fraction of files
is quarantined, when a label conflict is found under the `fail` policy, or when
a class has too few independent images to appear in every split.
"""

import collections
import dataclasses
import json
import os
from typing import Any, Dict, List, Mapping, Sequence

from tfx.dsl.io import fileio

from contracts import configs
from contracts import names
from dataset import group_split


LABEL_CONFLICT_POLICIES = configs.LABEL_CONFLICT_POLICIES
_SHOWN_IN_ERRORS = 10


class DataAuditError(RuntimeError):
  """The data breaks the run's data policy; the message says which files and why."""


@dataclasses.dataclass(frozen=True)
class DataPolicy:
  class_names: Sequence[str]
  split_names: Sequence[str]
  # Largest share of files that may be quarantined before the run stops.
  max_quarantined_fraction: float = 0.05
  # Any quarantined file stops the run.
  strict: bool = False
  # What to do with a group of duplicates whose members carry different labels.
  label_conflicts: str = 'drop'

  def __post_init__(self):
    if self.label_conflicts not in LABEL_CONFLICT_POLICIES:
      raise ValueError(f'label_conflicts must be one of {LABEL_CONFLICT_POLICIES}, '
                       f'got {self.label_conflicts!r}')
    if not 0.0 <= self.max_quarantined_fraction <= 1.0:
      raise ValueError('max_quarantined_fraction must be within [0, 1], got '
                       f'{self.max_quarantined_fraction}')


def quarantine_entry(relpath: str, reason: str,
                     masks: Sequence[str] = ()) -> Dict[str, Any]:
  """One quarantined file; an image's masks are listed with it, not counted apart."""
  entry: Dict[str, Any] = {'file': relpath, 'reason': reason}
  if masks:
    entry['masks'] = list(masks)
  return entry


def duplicate_groups(groups: Mapping[str, str], labels: Mapping[str, str],
                     sha256: Mapping[str, str]) -> List[Dict[str, Any]]:
  """Groups with more than one member, each with its files, labels and kind.

  Args:
    groups: relpath -> group id (near-duplicates share one).
    labels: relpath -> class folder.
    sha256: relpath -> content hash; a group whose members all share it holds
      exact copies.
  """
  members: Dict[str, List[str]] = collections.defaultdict(list)
  for relpath, group in sorted(groups.items()):
    members[group].append(relpath)
  return [
      {'group_id': group,
       'files': [{'file': f, 'label': labels[f]} for f in files],
       'labels': sorted({labels[f] for f in files}),
       'exact': len({sha256[f] for f in files}) == 1}
      for group, files in sorted(members.items()) if len(files) > 1]


def label_conflicts(groups: Sequence[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
  return [g for g in groups if len(g['labels']) > 1]


def conflict_reason(group: Mapping[str, Any]) -> str:
  others = ', '.join(f"{m['file']} ({m['label']})" for m in group['files'])
  return f'label conflict: same or near-same image under {others}; whole group dropped'


def build(*, data_root: str, policy: DataPolicy, near_duplicate_max_bits: int,
          assignment: Mapping[str, str], labels: Mapping[str, str],
          groups: Sequence[Mapping[str, Any]],
          quarantined: Sequence[Mapping[str, str]],
          ignored: Sequence[Mapping[str, str]],
          notes: Sequence[Mapping[str, str]],
          masks: Mapping[str, Sequence[str]] = {}) -> Dict[str, Any]:
  """The audit as a JSON-ready dict.

  Args:
    assignment: relpath -> split, for every ingested image.
    masks: relpath -> its mask files, for images that have any.
    labels: relpath -> class, for every readable image.
    groups: `duplicate_groups` of every readable image.
    quarantined, ignored: {'file', 'reason'} per file not ingested.
    notes: {'file', 'note'} per remark on an ingested file.
  """
  counts: Dict[str, Dict[str, int]] = collections.defaultdict(collections.Counter)
  for relpath, split in assignment.items():
    counts[split][labels[relpath]] += 1
  class_counts = collections.Counter(labels[r] for r in assignment)
  splits_of = {g['group_id']: sorted({assignment[m['file']] for m in g['files']
                                      if m['file'] in assignment})
               for g in groups}
  groups = [dict(g, splits=splits_of[g['group_id']]) for g in groups]
  considered = len(assignment) + len(quarantined)
  return {
      'data_root': data_root,
      'policy': dict(dataclasses.asdict(policy),
                     near_duplicate_max_bits=near_duplicate_max_bits),
      'ingested': len(assignment),
      'ingested_files': [
          dict({'file': relpath, 'split': split},
               **({'masks': list(masks[relpath])} if masks.get(relpath) else {}))
          for relpath, split in sorted(assignment.items())],
      'class_counts': {c: class_counts.get(c, 0) for c in policy.class_names},
      'independent_images_per_class': _independent_images(
          assignment, labels, groups, policy.class_names),
      'split_counts': {split: dict(sorted(c.items())) for split, c in sorted(counts.items())},
      'quarantined': sorted(quarantined, key=lambda q: q['file']),
      'quarantined_fraction': len(quarantined) / considered if considered else 0.0,
      'ignored': sorted(ignored, key=lambda q: q['file']),
      'notes': sorted(notes, key=lambda n: (n['file'], n['note'])),
      'exact_duplicate_groups': [g for g in groups if g['exact']],
      'near_duplicate_groups': groups,
      'label_conflicts': label_conflicts(groups),
  }


def outcomes(audit: Mapping[str, Any]) -> Dict[str, str]:
  """Each file and folder the audit names -> 'ingested', 'quarantined' or 'ignored'.

  An image's masks share its outcome. A folder the scan does not enter (a
  hidden or nested one) is one entry, however many files it holds.
  """
  found: Dict[str, str] = {}
  for outcome in ('ingested', 'quarantined', 'ignored'):
    for entry in audit[f'{outcome}_files' if outcome == 'ingested' else outcome]:
      for name in (entry['file'], *entry.get('masks', ())):
        found.setdefault(name, outcome)
  return found


def write(audit: Mapping[str, Any], folder: str) -> None:
  fileio.makedirs(folder)
  with fileio.open(os.path.join(folder, names.DATA_AUDIT_FILE), 'w') as f:
    f.write(json.dumps(audit, indent=1, sort_keys=True, ensure_ascii=False))
  with fileio.open(os.path.join(folder, names.DATA_AUDIT_REPORT_FILE), 'w') as f:
    f.write(markdown_report(audit))


def read(folder: str) -> Dict[str, Any]:
  with fileio.open(os.path.join(folder, names.DATA_AUDIT_FILE), 'r') as f:
    return json.loads(f.read())


def enforce(audit: Mapping[str, Any], policy: DataPolicy, report_path: str) -> None:
  """Raises DataAuditError when the audited data breaks `policy`."""
  problems = _class_shortfalls(audit, policy)
  if problems:
    raise DataAuditError(_message(
        'Too few independent images to put every class in every split', problems,
        report_path))
  conflicts = audit['label_conflicts']
  if conflicts and policy.label_conflicts == 'fail':
    raise DataAuditError(_message(
        f'{len(conflicts)} label conflicts (policy: fail)',
        [', '.join(f"{m['file']} ({m['label']})" for m in g['files'])
         for g in conflicts], report_path))
  quarantined = audit['quarantined']
  limit = 0.0 if policy.strict else policy.max_quarantined_fraction
  if quarantined and audit['quarantined_fraction'] > limit:
    rule = ('strict mode allows none' if policy.strict
            else f'the limit is {limit:.1%} of files')
    raise DataAuditError(_message(
        f"{len(quarantined)} of {audit['ingested'] + len(quarantined)} files "
        f"quarantined ({audit['quarantined_fraction']:.1%}); {rule}",
        [f"{q['file']}: {q['reason']}" for q in quarantined], report_path))


def _class_shortfalls(audit: Mapping[str, Any], policy: DataPolicy) -> List[str]:
  """A class needs one independent image per split, or some split lacks it."""
  needed = len(policy.split_names)
  independent = audit['independent_images_per_class']
  return [f'class {name!r}: {independent[name]} independent images, the '
          f'{needed} splits ({", ".join(policy.split_names)}) need at least {needed}'
          for name in policy.class_names if independent[name] < needed]


def _independent_images(assignment: Mapping[str, str], labels: Mapping[str, str],
                        groups: Sequence[Mapping[str, Any]],
                        class_names: Sequence[str]) -> Dict[str, int]:
  """Ingested near-duplicate groups per class (a group counts for its majority)."""
  group_of = {m['file']: g['group_id'] for g in groups for m in g['files']}
  members: Dict[str, List[str]] = collections.defaultdict(list)
  for relpath in assignment:
    members[group_of.get(relpath, relpath)].append(labels[relpath])
  counts = collections.Counter(group_split.majority(group_labels)
                               for group_labels in members.values())
  return {name: counts.get(name, 0) for name in class_names}


def _message(headline: str, lines: Sequence[str], report_path: str) -> str:
  shown = [f'  {line}' for line in lines[:_SHOWN_IN_ERRORS]]
  if len(lines) > _SHOWN_IN_ERRORS:
    shown.append(f'  ... and {len(lines) - _SHOWN_IN_ERRORS} more')
  return '\n'.join([f'{headline}:', *shown, f'Full report: {report_path}'])


def summary_line(audit: Mapping[str, Any]) -> str:
  classes = ', '.join(f'{name} {n}' for name, n in audit['class_counts'].items())
  conflicts = len(audit['label_conflicts'])
  action = {'drop': ' (dropped)', 'keep': ' (kept)', 'fail': ' (run stopped)'}[
      audit['policy']['label_conflicts']] if conflicts else ''
  return (f"Data audit: {audit['ingested']} images ingested ({classes}), "
          f"{len(audit['quarantined'])} quarantined, {len(audit['ignored'])} ignored; "
          f"{len(audit['near_duplicate_groups'])} near-duplicate groups "
          f"({len(audit['exact_duplicate_groups'])} exact), "
          f"{conflicts} label conflicts{action}.")


def markdown_report(audit: Mapping[str, Any]) -> str:
  policy = audit['policy']
  lines = [
      '# Data audit', '',
      f"Data root: `{audit['data_root']}`", '',
      summary_line(audit), '',
      f"Policy: label conflicts `{policy['label_conflicts']}`; at most "
      f"{policy['max_quarantined_fraction']:.1%} of files quarantined"
      f"{' (strict: none)' if policy['strict'] else ''}; near-duplicates are "
      f"images whose 64-bit difference hashes differ in at most "
      f"{policy['near_duplicate_max_bits']} bits.", '',
      '## Images per split', '',
      '| split | ' + ' | '.join(policy['class_names']) + ' |',
      '|---' * (len(policy['class_names']) + 1) + '|']
  for split, counts in audit['split_counts'].items():
    lines.append(f'| {split} | ' + ' | '.join(
        str(counts.get(c, 0)) for c in policy['class_names']) + ' |')
  lines += _file_table('Quarantined', audit['quarantined'], 'reason')
  lines += _file_table('Label conflicts', [
      {'file': ', '.join(f"{m['file']} ({m['label']})" for m in g['files']),
       'action': audit['policy']['label_conflicts']}
      for g in audit['label_conflicts']], 'action')
  lines += _file_table('Near-duplicate groups', [
      {'file': ', '.join(f"{m['file']} ({m['label']})" for m in g['files']),
       'split': ', '.join(g['splits']) or 'not ingested',
       } for g in audit['near_duplicate_groups']], 'split')
  lines += _file_table('Notes on ingested files', audit['notes'], 'note')
  lines += _file_table('Ignored', audit['ignored'], 'reason')
  return '\n'.join(lines) + '\n'


def _file_table(title: str, rows: Sequence[Mapping[str, str]], column: str) -> List[str]:
  lines = ['', f'## {title} ({len(rows)})', '']
  if not rows:
    return lines + ['None.']
  lines += [f'| file | {column} |', '|---|---|']
  return lines + [f'| {_cell(_with_masks(r))} | {_cell(r[column])} |' for r in rows]


def _with_masks(row: Mapping[str, Any]) -> str:
  masks = row.get('masks')
  return f"{row['file']} (with {', '.join(masks)})" if masks else row['file']


def _cell(text: str) -> str:
  return text.replace('|', '\\|').replace('\n', ' ')
