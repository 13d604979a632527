"""Beam arguments for the data components (ExampleGen, StatisticsGen, Transform, Evaluator).

Locally, DirectRunner runs in the orchestrator's process or in worker processes;
on Kubeflow it runs Beam inside each component's pod, which suits BUSI's size.
For more data, the same components hand their Beam work to an existing engine:
Google Cloud Dataflow, or Flink or Spark through Beam's portable job server.
The remote workers import this project's components and model code, so by
default they run the pipeline's own image.

On one machine, `portable_loopback_args` runs them through the same job API
that Flink's and Spark's job servers implement, with Beam's embedded job
service (`embed`) or a job server at HOST:PORT, and the SDK workers in the
submitting process (LOOPBACK).
"""

from typing import Dict, Sequence, Tuple

DIRECT_RUNNER = 'DirectRunner'
DATAFLOW_RUNNER = 'DataflowRunner'
PORTABLE_RUNNER = 'PortableRunner'
RUNNERS = (DIRECT_RUNNER, DATAFLOW_RUNNER, PORTABLE_RUNNER)

# Without these the runner cannot start a job; we say so before anything is uploaded.
REQUIRED_ARGS: Dict[str, Tuple[str, ...]] = {
    DIRECT_RUNNER: (),
    DATAFLOW_RUNNER: ('--project', '--region', '--temp_location'),
    PORTABLE_RUNNER: ('--job_endpoint',),
}


# The job endpoint that starts Beam's own job service inside the process.
EMBEDDED_JOB_SERVICE = 'embed'


class BeamArgsError(ValueError):
  """Beam arguments that cannot start a job; the message names what is missing."""


def local_direct_args(workers: int) -> Tuple[str, ...]:
  """DirectRunner, locally or in a Kubeflow pod: 1, in this process; otherwise
  `workers` processes, 0 meaning one per core.

  On BUSI, in-process Beam took less CPU and half the peak memory of worker
  processes (bench/README.md); more data can need the processes. In-process
  DirectRunner is Beam's default, so it takes no argument at all, and without
  Beam arguments TFX does not package its own installation for remote workers
  (`dependency_utils.make_beam_dependency_flags`, TFX 1.16): a copy and an sdist
  per Beam component, 4.8 s and 49 MB of /tmp that nothing removes, which
  DirectRunner's workers never read. Worker processes and the portable runner
  still cost that.
  """
  if workers == 1:
    return ()
  return ('--direct_running_mode=multi_processing', f'--direct_num_workers={workers}')


def _flag_names(args: Sequence[str]) -> set:
  return {arg.split('=', 1)[0] for arg in args if arg.startswith('--')}


def beam_pipeline_args(runner: str, extra_args: Sequence[str], image: str,
                       direct_num_workers: int) -> Tuple[str, ...]:
  """The runner, its worker image, and the user's own arguments last.

  Args:
    runner: one of RUNNERS.
    extra_args: `--flag=value` Beam options passed through; they override ours.
    image: the pipeline's container image, used for remote Beam workers.
    direct_num_workers: DirectRunner processes per component pod, as
      `local_direct_args` takes them.
  """
  if runner not in RUNNERS:
    raise BeamArgsError(f'--beam-runner must be one of {", ".join(RUNNERS)}, got {runner!r}')
  given = _flag_names(extra_args)
  missing = [flag for flag in REQUIRED_ARGS[runner] if flag not in given]
  if missing:
    raise BeamArgsError(
        f'--beam-runner {runner} needs ' +
        ', '.join(f'--beam-arg={flag}=...' for flag in missing))
  # DirectRunner is Beam's default runner: named, it would be an argument.
  args = [] if runner == DIRECT_RUNNER else [f'--runner={runner}']
  if runner == DIRECT_RUNNER:
    args += local_direct_args(direct_num_workers)
  elif runner == DATAFLOW_RUNNER and '--sdk_container_image' not in given:
    args.append(f'--sdk_container_image={image}')
  elif runner == PORTABLE_RUNNER and '--environment_type' not in given:
    args += ['--environment_type=DOCKER', f'--environment_config={image}']
  return tuple(args) + tuple(extra_args)


def portable_loopback_args(job_endpoint: str) -> Tuple[str, ...]:
  """PortableRunner at `job_endpoint` (HOST:PORT or `embed`), workers in this process."""
  host, _, port = job_endpoint.rpartition(':')
  if job_endpoint != EMBEDDED_JOB_SERVICE and not (host and port.isdigit()):
    raise BeamArgsError(
        f'--job-endpoint takes HOST:PORT (e.g. localhost:8099) or '
        f'{EMBEDDED_JOB_SERVICE}, got {job_endpoint!r}')
  return (f'--runner={PORTABLE_RUNNER}', f'--job_endpoint={job_endpoint}',
          '--environment_type=LOOPBACK')
