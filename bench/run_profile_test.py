"""Tests for bench/run_profile.py: memory sampling of a real process tree."""

import sys

from bench import run_profile

_MIB = 2**20


def test_samples_are_attributed_to_the_window_that_holds_them():
  windows = [run_profile.Window('ExampleGen', 10.0, 20.0),
             run_profile.Window('Trainer', 21.0, 40.0),
             run_profile.Window('Pusher', 40.5, 40.6)]
  samples = [(9.0, 50, 0.0), (12.0, 300, 1.0), (15.0, 200, 2.0), (20.5, 900, 3.0),
             (30.0, 700, 4.0), (39.9, 800, 5.0)]
  assert run_profile.peak_rss_by_window(samples, windows) == {
      'ExampleGen': 300, 'Trainer': 800, 'Pusher': None,
      run_profile.OUTSIDE_COMPONENTS: 900}


def test_run_sampled_counts_grandchildren():
  # The child starts a grandchild that holds 200 MiB of written pages, as a
  # Beam worker would; the child itself stays small.
  grandchild = ("import time; block = b'x' * (200 * 2**20); time.sleep(2)")
  child = (f'import subprocess, sys; '
           f'subprocess.run([sys.executable, "-c", {grandchild!r}], check=True)')
  run = run_profile.run_sampled([sys.executable, '-c', child], interval=0.1)
  assert run.returncode == 0
  assert run.peak_rss >= 200 * _MIB
  assert run.seconds >= 2
  assert all(run.start <= when <= run.end for when, _, _ in run.samples)


def test_component_rows_report_mib_and_unobserved_peaks():
  windows = [run_profile.Window('StatisticsGen', 0.0, 10.0),
             run_profile.Window('ImportSchemaGen', 10.0, 10.05)]
  samples = [(0.0, 100 * _MIB, 0.0), (5.0, 300 * _MIB, 6.0), (9.9, 200 * _MIB, 9.0),
             (10.2, 200 * _MIB, 9.5)]
  rows = run_profile.component_rows(windows, samples)
  assert rows == [
      {'component': 'StatisticsGen', 'seconds': 10.0, 'cpu_seconds': 9.0,
       'peak_rss_mib': 300.0},
      {'component': 'ImportSchemaGen', 'seconds': 0.05, 'cpu_seconds': 0.0,
       'peak_rss_mib': None}]


def test_run_sampled_measures_cpu_of_the_tree():
  # A grandchild that spins for a second of CPU time.
  spin = 'import time\nend = time.process_time() + 1\nwhile time.process_time() < end: pass'
  child = (f'import subprocess, sys; '
           f'subprocess.run([sys.executable, "-c", {spin!r}], check=True)')
  run = run_profile.run_sampled([sys.executable, '-c', child], interval=0.1)
  assert run.cpu_seconds >= 1.0
  assert run.samples[-1][2] <= run.cpu_seconds + 0.5
