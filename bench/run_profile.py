"""Wall time, CPU time and peak memory of a measured run, split by component.

Each measurement runs in a child process so that one run's memory never shows
up in the next. The parent samples the resident memory and the CPU time used so
far of the child's whole process tree (Beam's multi-processing workers
included) a few times a second, then hands each sample to the component whose
ML Metadata execution window holds its time stamp. CPU seconds matter on a
shared machine: other jobs stretch the wall time of a run, much less its CPU. LocalDagRunner runs one component at a time, so the
windows do not overlap; samples outside every window belong to the
orchestrator (start-up, driver and publisher work between components).
"""

import dataclasses
import os
import resource
import subprocess
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

import psutil

_PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_INTERVAL_S = 0.2
OUTSIDE_COMPONENTS = '(orchestrator)'

# (seconds since the epoch, bytes resident, CPU seconds used since the start)
Sample = Tuple[float, int, float]


@dataclasses.dataclass(frozen=True)
class Window:
  """One component's execution, in seconds since the epoch."""
  name: str
  start: float
  end: float

  @property
  def seconds(self) -> float:
    return self.end - self.start


def tree_usage(process: psutil.Process) -> Tuple[int, float]:
  """Resident bytes and CPU seconds of a process and all its descendants.

  Pages shared between processes count once per process, so the bytes are an
  upper bound on the memory the tree really holds. CPU time of descendants that
  have exited counts once their parent has reaped them.
  """
  rss, cpu = 0, 0.0
  for member in [process, *process.children(recursive=True)]:
    try:
      with member.oneshot():
        rss += member.memory_info().rss
        times = member.cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
      continue  # exited between listing and reading
    cpu += times.user + times.system + times.children_user + times.children_system
  return rss, cpu


class _TreeSampler(threading.Thread):

  def __init__(self, pid: int, interval: float):
    super().__init__(daemon=True)
    self._process = psutil.Process(pid)
    self._interval = interval
    self._stop_requested = threading.Event()
    self.samples: List[Sample] = []

  def run(self) -> None:
    cpu_so_far = 0.0
    while not self._stop_requested.is_set():
      try:
        rss, cpu = tree_usage(self._process)
      except psutil.NoSuchProcess:
        return
      # A worker that exited but is not reaped yet drops out of the sum for a
      # moment; CPU time already spent never decreases.
      cpu_so_far = max(cpu_so_far, cpu)
      self.samples.append((time.time(), rss, cpu_so_far))
      self._stop_requested.wait(self._interval)

  def stop(self) -> None:
    self._stop_requested.set()
    self.join()


@dataclasses.dataclass
class ChildRun:
  returncode: int
  start: float
  end: float
  samples: List[Sample]

  @property
  def seconds(self) -> float:
    return self.end - self.start

  cpu_seconds: float

  @property
  def peak_rss(self) -> int:
    return max((rss for _, rss, _ in self.samples), default=0)


def project_env() -> Dict[str, str]:
  """This environment, with the project importable and Keras 2 selected."""
  return dict(os.environ, TF_USE_LEGACY_KERAS='1', PYTHONPATH=os.pathsep.join(
      p for p in (_PROJECT_DIR, os.environ.get('PYTHONPATH')) if p))


def run_sampled(argv: Sequence[str], env: Optional[Dict[str, str]] = None,
                interval: float = SAMPLE_INTERVAL_S) -> ChildRun:
  """Runs `argv` to completion while sampling its process tree's memory."""
  start = time.time()
  cpu_before = _reaped_children_cpu()
  child = subprocess.Popen(list(argv), env=env)
  sampler = _TreeSampler(child.pid, interval)
  sampler.start()
  returncode = child.wait()
  end = time.time()
  sampler.stop()
  return ChildRun(returncode, start, end, sampler.samples,
                  _reaped_children_cpu() - cpu_before)


def _reaped_children_cpu() -> float:
  """CPU seconds of this process's finished descendants, reaped ones only."""
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  return usage.ru_utime + usage.ru_stime


def peak_rss_by_window(samples: Sequence[Sample],
                       windows: Sequence[Window]) -> Dict[str, Optional[int]]:
  """Each window's highest sample, plus OUTSIDE_COMPONENTS for the rest.

  A window too short to catch a sample gets None: its peak was not observed.
  """
  peaks: Dict[str, Optional[int]] = {w.name: None for w in windows}
  peaks[OUTSIDE_COMPONENTS] = None
  for when, rss, _ in samples:
    owner = next((w.name for w in windows if w.start <= when <= w.end),
                 OUTSIDE_COMPONENTS)
    if peaks[owner] is None or rss > peaks[owner]:
      peaks[owner] = rss
  return peaks


def cpu_seconds_by_window(samples: Sequence[Sample],
                          windows: Sequence[Window]) -> Dict[str, float]:
  """CPU seconds the tree used within each window, to the sampling interval."""
  def used_by(when: float) -> float:
    return max((cpu for t, _, cpu in samples if t <= when), default=0.0)
  return {w.name: used_by(w.end) - used_by(w.start) for w in windows}


def component_windows(metadata_path: str, pipeline_name: str) -> List[Window]:
  """The newest run's component executions, in the order they started."""
  from observability import metadata_run  # ML Metadata: import only when used

  return [Window(e.component, e.started, e.finished)
          for e in metadata_run.read(metadata_path, pipeline_name).executions]


def component_rows(windows: Sequence[Window],
                   samples: Sequence[Sample]) -> List[Dict[str, object]]:
  """Per component: wall seconds, CPU seconds and peak process-tree RSS in MiB."""
  peaks = peak_rss_by_window(samples, windows)
  cpu = cpu_seconds_by_window(samples, windows)
  return [{'component': w.name, 'seconds': round(w.seconds, 2),
           'cpu_seconds': round(cpu[w.name], 1), 'peak_rss_mib': mib(peaks[w.name])}
          for w in windows]


def mib(rss: Optional[int]) -> Optional[float]:
  return None if rss is None else round(rss / 2**20, 1)


def machine_load() -> Dict[str, object]:
  """What else the machine was doing: core count and 1-minute load average."""
  return {'cpu_count': os.cpu_count(), 'load_avg_1min': round(os.getloadavg()[0], 2)}
