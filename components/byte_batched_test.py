"""Byte-bounded batches: on inside StatisticsGen's executor, off again outside it."""

from unittest import mock

import pytest
from tfx.components.statistics_gen import executor as statistics_gen_executor
from tfx_bsl.coders import batch_util

from components import byte_batched
from contracts import configs
from pipeline import pipeline as pipeline_lib


def _plan_batches():
  """What tfx-bsl passes to Beam's BatchElements for a source with no batch size."""
  return batch_util.GetBatchElementsKwargs(None)


def _batches_by_bytes(kwargs) -> bool:
  # By bytes, min and max are one byte target and elements are sized by their
  # bytes; tuned by time, they span 1 to 1000 records.
  return 'element_size_fn' in kwargs and kwargs['min_batch_size'] == kwargs['max_batch_size']


def test_batches_are_tuned_by_time_outside_the_block():
  assert not _batches_by_bytes(_plan_batches())


def test_block_batches_by_bytes_and_restores_the_default_even_on_error():
  with pytest.raises(RuntimeError):
    with byte_batched.byte_size_batching():
      assert _batches_by_bytes(_plan_batches())
      raise RuntimeError('the executor failed')
  assert not _batches_by_bytes(_plan_batches())


def test_executor_builds_its_beam_pipeline_with_byte_batches():
  planned = []
  with mock.patch.object(statistics_gen_executor.Executor, 'Do',
                         side_effect=lambda *_: planned.append(_plan_batches())):
    byte_batched.StatisticsGenExecutor().Do({}, {}, {})
  assert len(planned) == 1 and _batches_by_bytes(planned[0])
  assert not _batches_by_bytes(_plan_batches())


def test_pipeline_runs_statistics_with_the_byte_batched_executor():
  config = configs.PipelineConfig(pipeline_root='/tmp/root', serving_dir='/tmp/serving')
  components = {c.id: c for c in pipeline_lib.create_pipeline(config).components}
  assert (components['StatisticsGen'].executor_spec.executor_class
          is byte_batched.StatisticsGenExecutor)
