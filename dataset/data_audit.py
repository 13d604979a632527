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
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from tfx.dsl.io import fileio

from contracts import configs
from contracts import names
from contracts import printable
from dataset import exports
from dataset import group_split
from dataset import image_files


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


@dataclasses.dataclass(frozen=True)
class DuplicateMember:
  file: str
  label: str


@dataclasses.dataclass(frozen=True)
class DuplicateGroup:
  """Images that are copies or near copies of one another, kept in one split."""
  group_id: str
  files: Tuple[DuplicateMember, ...]
  # The members' classes, sorted; more than one makes a label conflict.
  labels: Tuple[str, ...]
  # Every member has the same content hash.
  exact: bool
  # The splits its ingested members went to; `build` fills them in.
  splits: Tuple[str, ...] = ()
  # Distinct patients among the members when the site names every member's
  # patient; 0 when some member has none.
  patients: int = 0

  @property
  def is_label_conflict(self) -> bool:
    """One scan under several labels.

    Near (not exact) copies of several named patients are several scans that
    look alike (BUS-BRA's cropped scans do at 10 bits): they share a split,
    but their labels do not conflict.
    """
    return len(self.labels) > 1 and (self.exact or self.patients < 2)

  def members_text(self) -> str:
    """The members with their labels, as messages and the report name them."""
    return ', '.join(f'{m.file} ({m.label})' for m in self.files)


@dataclasses.dataclass(frozen=True)
class PatientConflict:
  """A patient whose images carry different labels.

  Kept, with the patient's images in one split: two lesions of one patient
  (left and right breast) may well differ. Under the `fail` label-conflict
  policy the run stops instead, for the labels to be checked.
  """
  site: str
  patient_id: str
  files: Tuple[DuplicateMember, ...]
  labels: Tuple[str, ...]

  def members_text(self) -> str:
    return (f'patient {self.patient_id} of {self.site}: '
            + ', '.join(f'{m.file} ({m.label})' for m in self.files))


@dataclasses.dataclass(frozen=True)
class SiteCounts:
  """One site's share of the audit."""
  ingested: int
  quarantined: int
  ignored: int
  # class -> ingested images.
  class_counts: Dict[str, int]
  # split -> class -> ingested images.
  split_counts: Dict[str, Dict[str, int]]


@dataclasses.dataclass(frozen=True)
class IngestedFile:
  file: str
  split: str
  masks: Tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class FileNote:
  """A remark on an ingested file, such as a mask that could not be used."""
  file: str
  note: str


@dataclasses.dataclass(frozen=True)
class DataAudit:
  """What happened to every file; `to_json` and `from_json` keep data_audit.json."""
  data_root: str
  policy: DataPolicy
  near_duplicate_max_bits: int
  ingested: int
  # Each ingested image with its split; audits of runs that counted the
  # ingested images without listing them have none.
  ingested_files: Tuple[IngestedFile, ...]
  # class -> ingested images.
  class_counts: Dict[str, int]
  independent_images_per_class: Dict[str, int]
  # split -> class -> ingested images.
  split_counts: Dict[str, Dict[str, int]]
  quarantined: Tuple[image_files.ExcludedFile, ...]
  ignored: Tuple[image_files.ExcludedFile, ...]
  notes: Tuple[FileNote, ...]
  near_duplicate_groups: Tuple[DuplicateGroup, ...]
  # site -> its counts; audits of runs before sites existed have none.
  site_counts: Dict[str, SiteCounts] = dataclasses.field(default_factory=dict)
  patient_conflicts: Tuple[PatientConflict, ...] = ()
  # Dated export (`site/2026-11`) -> ingested images, for sites read as
  # exports (dataset/exports.py): the exports that trained the model.
  export_counts: Dict[str, int] = dataclasses.field(default_factory=dict)

  @property
  def quarantined_fraction(self) -> float:
    considered = self.ingested + len(self.quarantined)
    return len(self.quarantined) / considered if considered else 0.0

  @property
  def exact_duplicate_groups(self) -> List[DuplicateGroup]:
    return [g for g in self.near_duplicate_groups if g.exact]

  @property
  def label_conflicts(self) -> List[DuplicateGroup]:
    return [g for g in self.near_duplicate_groups if g.is_label_conflict]

  def to_json(self) -> str:
    return json.dumps({
        'data_root': self.data_root,
        'policy': dict(dataclasses.asdict(self.policy),
                       near_duplicate_max_bits=self.near_duplicate_max_bits),
        'ingested': self.ingested,
        'ingested_files': [_masks_if_any(f) for f in self.ingested_files],
        'class_counts': self.class_counts,
        'independent_images_per_class': self.independent_images_per_class,
        'split_counts': self.split_counts,
        'quarantined': [_masks_if_any(q) for q in self.quarantined],
        'quarantined_fraction': self.quarantined_fraction,
        # Ignored entries list their masks even when there are none.
        'ignored': _as_json(self.ignored),
        'notes': _as_json(self.notes),
        'exact_duplicate_groups': _as_json(self.exact_duplicate_groups),
        'near_duplicate_groups': _as_json(self.near_duplicate_groups),
        'label_conflicts': _as_json(self.label_conflicts),
        'site_counts': {site: dataclasses.asdict(c) for site, c in self.site_counts.items()},
        'patient_conflicts': _as_json(self.patient_conflicts),
        'export_counts': self.export_counts,
    }, indent=1, sort_keys=True, ensure_ascii=False)

  @classmethod
  def from_json(cls, text: str) -> 'DataAudit':
    """The audit of data_audit.json; what it derives from other keys is not read."""
    audit = json.loads(text)
    policy = dict(audit['policy'])
    near_duplicate_max_bits = policy.pop('near_duplicate_max_bits')
    return cls(
        data_root=audit['data_root'],
        policy=DataPolicy(**dict(policy, class_names=tuple(policy['class_names']),
                                 split_names=tuple(policy['split_names']))),
        near_duplicate_max_bits=near_duplicate_max_bits,
        ingested=audit['ingested'],
        ingested_files=tuple(IngestedFile(f['file'], f['split'], tuple(f.get('masks', ())))
                             for f in audit.get('ingested_files', ())),
        class_counts=audit['class_counts'],
        independent_images_per_class=audit['independent_images_per_class'],
        split_counts=audit['split_counts'],
        quarantined=tuple(_excluded_file(q) for q in audit['quarantined']),
        ignored=tuple(_excluded_file(i) for i in audit['ignored']),
        notes=tuple(FileNote(n['file'], n['note']) for n in audit['notes']),
        near_duplicate_groups=tuple(
            DuplicateGroup(g['group_id'],
                           tuple(DuplicateMember(m['file'], m['label']) for m in g['files']),
                           tuple(g['labels']), g['exact'], tuple(g['splits']),
                           g.get('patients', 0))
            for g in audit['near_duplicate_groups']),
        site_counts={site: SiteCounts(**c) for site, c in audit.get('site_counts', {}).items()},
        patient_conflicts=tuple(
            PatientConflict(p['site'], p['patient_id'],
                            tuple(DuplicateMember(m['file'], m['label']) for m in p['files']),
                            tuple(p['labels']))
            for p in audit.get('patient_conflicts', ())),
        export_counts=audit.get('export_counts', {}))


def _as_json(entries: Sequence[Any]) -> List[Dict[str, Any]]:
  return [dataclasses.asdict(e) for e in entries]


def _excluded_file(entry: Mapping[str, Any]) -> image_files.ExcludedFile:
  return image_files.ExcludedFile(entry['file'], entry['reason'],
                                  tuple(entry.get('masks', ())))


def _masks_if_any(entry: Union[IngestedFile, image_files.ExcludedFile]) -> Dict[str, Any]:
  """An entry's JSON, with `masks` only when it has some."""
  value = dataclasses.asdict(entry)
  if not value['masks']:
    del value['masks']
  return value


def duplicate_groups(groups: Mapping[str, str], labels: Mapping[str, str],
                     sha256: Mapping[str, str],
                     patients: Mapping[str, str] = {}) -> List[DuplicateGroup]:
  """Groups with more than one member, each with its files, labels and kind.

  Args:
    groups: relpath -> group id (near-duplicates share one).
    labels: relpath -> class folder.
    sha256: relpath -> content hash; a group whose members all share it holds
      exact copies.
    patients: relpath -> its patient, unique across sites, for images whose
      site names one.
  """
  members: Dict[str, List[str]] = collections.defaultdict(list)
  for relpath, group in sorted(groups.items()):
    members[group].append(relpath)
  return [
      DuplicateGroup(group_id=group,
                     files=tuple(DuplicateMember(f, labels[f]) for f in files),
                     labels=tuple(sorted({labels[f] for f in files})),
                     exact=len({sha256[f] for f in files}) == 1,
                     patients=(len({patients[f] for f in files})
                               if all(patients.get(f) for f in files) else 0))
      for group, files in sorted(members.items()) if len(files) > 1]


def conflict_reason(group: DuplicateGroup) -> str:
  return (f'label conflict: same or near-same image under {group.members_text()}; '
          'whole group dropped')


def build(*, data_root: str, policy: DataPolicy, near_duplicate_max_bits: int,
          assignment: Mapping[str, str], labels: Mapping[str, str],
          groups: Sequence[DuplicateGroup],
          quarantined: Sequence[image_files.ExcludedFile],
          ignored: Sequence[image_files.ExcludedFile],
          notes: Sequence[FileNote],
          masks: Mapping[str, Sequence[str]] = {},
          split_groups: Mapping[str, str] = {},
          site_of: Optional[Callable[[str], str]] = None,
          patient_conflicts: Sequence[PatientConflict] = ()) -> DataAudit:
  """The audit of one ImageExampleGen run.

  Args:
    assignment: relpath -> split, for every ingested image.
    masks: relpath -> its mask files, for images that have any.
    split_groups: relpath -> the group it was split with (near-duplicates and
      a patient's images), for ingested images; none: the near-duplicate groups.
    site_of: the site of a relpath; with it the audit counts per site.
    labels: relpath -> class, for every readable image.
    groups: `duplicate_groups` of every readable image.
    quarantined, ignored: the files not ingested, with the reason.
    notes: the remarks on ingested files.
  """
  class_counts, split_counts = _counts(
      [(split, labels[relpath]) for relpath, split in assignment.items()], policy.class_names)
  groups = tuple(
      dataclasses.replace(g, splits=tuple(sorted({assignment[m.file] for m in g.files
                                                  if m.file in assignment})))
      for g in groups)
  return DataAudit(
      data_root=data_root,
      policy=policy,
      near_duplicate_max_bits=near_duplicate_max_bits,
      ingested=len(assignment),
      ingested_files=tuple(IngestedFile(relpath, split, tuple(masks.get(relpath, ())))
                           for relpath, split in sorted(assignment.items())),
      class_counts=class_counts,
      independent_images_per_class=_independent_images(
          assignment, labels,
          split_groups or {m.file: g.group_id for g in groups for m in g.files},
          policy.class_names),
      split_counts=split_counts,
      quarantined=tuple(sorted(quarantined, key=lambda q: q.file)),
      ignored=tuple(sorted(ignored, key=lambda i: i.file)),
      notes=tuple(sorted(notes, key=lambda n: (n.file, n.note))),
      near_duplicate_groups=groups,
      site_counts=(_site_counts(assignment, labels, quarantined, ignored, site_of,
                                policy.class_names) if site_of else {}),
      patient_conflicts=tuple(patient_conflicts),
      export_counts=exports.counts(list(assignment)))


def _site_counts(assignment: Mapping[str, str], labels: Mapping[str, str],
                 quarantined: Sequence[image_files.ExcludedFile],
                 ignored: Sequence[image_files.ExcludedFile],
                 site_of: Callable[[str], str],
                 class_names: Sequence[str]) -> Dict[str, SiteCounts]:
  ingested = collections.defaultdict(list)
  for relpath, split in assignment.items():
    ingested[site_of(relpath)].append((split, labels[relpath]))
  quarantined_at = collections.Counter(site_of(q.file) for q in quarantined)
  ignored_at = collections.Counter(site_of(i.file) for i in ignored)
  return {site: SiteCounts(len(ingested[site]), quarantined_at[site], ignored_at[site],
                           *_counts(ingested[site], class_names))
          for site in sorted({*ingested, *quarantined_at, *ignored_at})}


def _counts(ingested: Sequence[Tuple[str, str]], class_names: Sequence[str]
            ) -> Tuple[Dict[str, int], Dict[str, Dict[str, int]]]:
  """Class -> images and split -> class -> images, of (split, class) pairs."""
  by_split: Dict[str, Dict[str, int]] = collections.defaultdict(collections.Counter)
  for split, label in ingested:
    by_split[split][label] += 1
  by_class = collections.Counter(label for _, label in ingested)
  return ({c: by_class.get(c, 0) for c in class_names},
          {split: dict(sorted(c.items())) for split, c in sorted(by_split.items())})


def outcomes(audit: DataAudit) -> Dict[str, str]:
  """Each file and folder the audit names -> 'ingested', 'quarantined' or 'ignored'.

  An image's masks share its outcome. A folder the scan does not enter (a
  hidden or nested one) is one entry, however many files it holds.
  """
  found: Dict[str, str] = {}
  for outcome, entries in (('ingested', audit.ingested_files),
                           ('quarantined', audit.quarantined),
                           ('ignored', audit.ignored)):
    for entry in entries:
      for name in (entry.file, *entry.masks):
        found.setdefault(name, outcome)
  return found


def write(audit: DataAudit, folder: str) -> None:
  fileio.makedirs(folder)
  with fileio.open(os.path.join(folder, names.DATA_AUDIT_FILE), 'w') as f:
    f.write(audit.to_json())
  with fileio.open(os.path.join(folder, names.DATA_AUDIT_REPORT_FILE), 'w') as f:
    f.write(markdown_report(audit))


def read(folder: str) -> DataAudit:
  with fileio.open(os.path.join(folder, names.DATA_AUDIT_FILE), 'r') as f:
    return DataAudit.from_json(f.read())


def enforce(audit: DataAudit, policy: DataPolicy, report_path: str) -> None:
  """Raises DataAuditError when the audited data breaks `policy`."""
  problems = _class_shortfalls(audit, policy)
  if problems:
    raise DataAuditError(_message(
        'Too few independent images to put every class in every split', problems,
        report_path))
  conflicts = [*audit.label_conflicts, *audit.patient_conflicts]
  if conflicts and policy.label_conflicts == 'fail':
    raise DataAuditError(_message(
        f'{len(conflicts)} label conflicts (policy: fail)',
        [g.members_text() for g in conflicts], report_path))
  quarantined = audit.quarantined
  limit = 0.0 if policy.strict else policy.max_quarantined_fraction
  if quarantined and audit.quarantined_fraction > limit:
    rule = ('strict mode allows none' if policy.strict
            else f'the limit is {limit:.1%} of files')
    raise DataAuditError(_message(
        f'{len(quarantined)} of {audit.ingested + len(quarantined)} files '
        f'quarantined ({audit.quarantined_fraction:.1%}); {rule}',
        [f'{q.file}: {q.reason}' for q in quarantined], report_path))


def _class_shortfalls(audit: DataAudit, policy: DataPolicy) -> List[str]:
  """A class needs one independent image per split, or some split lacks it."""
  needed = len(policy.split_names)
  independent = audit.independent_images_per_class
  return [f'class {name!r}: {independent[name]} independent images, the '
          f'{needed} splits ({", ".join(policy.split_names)}) need at least {needed}'
          for name in policy.class_names if independent[name] < needed]


def _independent_images(assignment: Mapping[str, str], labels: Mapping[str, str],
                        group_of: Mapping[str, str],
                        class_names: Sequence[str]) -> Dict[str, int]:
  """Ingested groups per class (a group counts for its majority)."""
  members: Dict[str, List[str]] = collections.defaultdict(list)
  for relpath in assignment:
    members[group_of.get(relpath, relpath)].append(labels[relpath])
  counts = collections.Counter(group_split.majority(group_labels)
                               for group_labels in members.values())
  return {name: counts.get(name, 0) for name in class_names}


def _message(headline: str, lines: Sequence[str], report_path: str) -> str:
  """The stop's message, one line per file; a control character in a name is escaped."""
  shown = [f'  {printable.one_line(line)}' for line in lines[:_SHOWN_IN_ERRORS]]
  if len(lines) > _SHOWN_IN_ERRORS:
    shown.append(f'  ... and {len(lines) - _SHOWN_IN_ERRORS} more')
  return '\n'.join([f'{headline}:', *shown, f'Full report: {report_path}'])


def summary_line(audit: DataAudit) -> str:
  classes = ', '.join(f'{name} {n}' for name, n in audit.class_counts.items())
  conflicts = len(audit.label_conflicts)
  action = {'drop': ' (dropped)', 'keep': ' (kept)', 'fail': ' (run stopped)'}[
      audit.policy.label_conflicts] if conflicts else ''
  return (f'Data audit: {audit.ingested} images ingested ({classes}), '
          f'{len(audit.quarantined)} quarantined, {len(audit.ignored)} ignored; '
          f'{len(audit.near_duplicate_groups)} near-duplicate groups '
          f'({len(audit.exact_duplicate_groups)} exact), '
          f'{conflicts} label conflicts{action}'
          + (f', {len(audit.patient_conflicts)} patients under two labels (kept)'
             if audit.patient_conflicts else '') + '.'
          + _sites_text(audit) + _exports_text(audit))


def _sites_text(audit: DataAudit) -> str:
  """Per site, when the run read more than one."""
  if len(audit.site_counts) < 2:
    return ''
  return ' Sites: ' + '; '.join(
      f'{site} {c.ingested} ingested, {c.quarantined} quarantined'
      for site, c in audit.site_counts.items()) + '.'


def _exports_text(audit: DataAudit) -> str:
  """The dated exports read, when a site is laid out as exports."""
  if not audit.export_counts:
    return ''
  return ' Exports: ' + ', '.join(
      f'{export} {n}' for export, n in audit.export_counts.items()) + '.'


def markdown_report(audit: DataAudit) -> str:
  policy = audit.policy
  lines = [
      '# Data audit', '',
      f'Data root: `{audit.data_root}`', '',
      summary_line(audit), '',
      f'Policy: label conflicts `{policy.label_conflicts}`; at most '
      f'{policy.max_quarantined_fraction:.1%} of files quarantined'
      f"{' (strict: none)' if policy.strict else ''}; near-duplicates are "
      f'images whose 64-bit difference hashes differ in at most '
      f'{audit.near_duplicate_max_bits} bits.', '',
      '## Images per split', '',
      '| split | ' + ' | '.join(policy.class_names) + ' |',
      '|---' * (len(policy.class_names) + 1) + '|']
  for split, counts in audit.split_counts.items():
    lines.append(f'| {split} | ' + ' | '.join(
        str(counts.get(c, 0)) for c in policy.class_names) + ' |')
  if audit.site_counts:
    lines += ['', '## Images per site', '',
              '| site | ingested | quarantined | ignored | ' + ' | '.join(
                  f'{split}: {name}' for split in audit.split_counts
                  for name in policy.class_names) + ' |',
              '|---' * (4 + len(audit.split_counts) * len(policy.class_names)) + '|']
    for site, c in audit.site_counts.items():
      lines.append(f'| {_cell(site)} | {c.ingested} | {c.quarantined} | {c.ignored} | '
                   + ' | '.join(str(c.split_counts.get(split, {}).get(name, 0))
                                for split in audit.split_counts
                                for name in policy.class_names) + ' |')
  if audit.export_counts:
    lines += ['', '## Images per export', '', '| export | ingested |', '|---|---|',
              *(f'| {_cell(export)} | {n} |' for export, n in audit.export_counts.items())]
  lines += _file_table('Quarantined', 'reason', [
      (_with_masks(q.file, q.masks), q.reason) for q in audit.quarantined])
  lines += _file_table('Label conflicts', 'action', [
      (g.members_text(), policy.label_conflicts) for g in audit.label_conflicts])
  lines += _file_table('Patients under two labels', 'action', [
      (p.members_text(), 'fail' if policy.label_conflicts == 'fail' else 'kept')
      for p in audit.patient_conflicts])
  lines += _file_table('Near-duplicate groups', 'split', [
      (g.members_text(), ', '.join(g.splits) or 'not ingested')
      for g in audit.near_duplicate_groups])
  lines += _file_table('Notes on ingested files', 'note',
                       [(n.file, n.note) for n in audit.notes])
  lines += _file_table('Ignored', 'reason', [
      (_with_masks(i.file, i.masks), i.reason) for i in audit.ignored])
  return '\n'.join(lines) + '\n'


def _file_table(title: str, column: str, rows: Sequence[Tuple[str, str]]) -> List[str]:
  """A table of (file, `column`) rows under a heading that counts them."""
  lines = ['', f'## {title} ({len(rows)})', '']
  if not rows:
    return lines + ['None.']
  lines += [f'| file | {column} |', '|---|---|']
  return lines + [f'| {_cell(file)} | {_cell(value)} |' for file, value in rows]


def _with_masks(file: str, masks: Sequence[str]) -> str:
  return f"{file} (with {', '.join(masks)})" if masks else file


def _cell(text: str) -> str:
  return text.replace('|', '\\|').replace('\n', ' ')
