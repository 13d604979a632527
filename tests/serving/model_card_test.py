"""The model card states the operating point its decisions use, for tools and for people."""

import dataclasses
import json

import numpy as np

from contracts import names
from models import operating_point
from serving import model_card


def _card(point) -> model_card.ModelCard:
  return model_card.ModelCard(
      model_name=names.MODEL_NAME, version=3, pushed_at='2026-12-01T10:00:00+00:00',
      run_id='run-3', data=model_card.DataSummary('fp', {'malignant': 2},
                                                  {'eval': {'malignant': 2}}),
      test_split='test', test_metrics={'accuracy': 0.9}, floors={'accuracy': 0.8},
      regression_tolerance=0.0, baseline_version='', code_fingerprint='c',
      training_config={}, operating_point=point)


def test_the_card_round_trips_its_operating_point_and_shows_it():
  malignant = np.linspace(0.2, 0.95, 20)
  others = np.linspace(0.0, 0.3, 60)
  point = operating_point.choose(np.concatenate([malignant, others]),
                                 np.arange(80) < 20, 0.90)
  card = _card(point)
  assert model_card.from_json(model_card.to_json(card)) == card
  text = model_card.to_markdown(card)
  assert '## Operating point' in text
  assert f'least {point.threshold:.4f}' in text
  sensitivity = point.sensitivity
  assert (f'| malignant sensitivity | {sensitivity.estimate:.4f} | '
          f'{sensitivity.successes}/20 | {sensitivity.lower:.3f}-{sensitivity.upper:.3f} |'
          in text)
  assert f'| malignant specificity | {point.specificity.estimate:.4f} |' in text
  assert 'below the target' in text   # 20 malignant scans cannot show 0.90 at 95%


def test_a_card_written_before_operating_points_reads_without_one():
  fields = dataclasses.asdict(_card(None))
  del fields['operating_point']
  card = model_card.from_json(json.dumps(fields))
  assert card.operating_point is None
  assert '## Operating point' not in model_card.to_markdown(card)


def test_the_card_says_which_served_version_the_weights_started_from():
  warm = dataclasses.replace(_card(None), started_from='/serving/busi_classifier/2')
  assert model_card.from_json(model_card.to_json(warm)) == warm
  assert ('Warm-started from the weights of served version `/serving/busi_classifier/2`.'
          in model_card.to_markdown(warm))
  fields = dataclasses.asdict(_card(None))
  del fields['started_from']   # a card written before warm starts
  cold = model_card.from_json(json.dumps(fields))
  assert cold.started_from == ''
  assert "Trained from the family's initial weights." in model_card.to_markdown(cold)


def test_the_card_says_where_the_model_should_not_be_used():
  card = dataclasses.replace(
      _card(None), site_metrics={'busi': {'accuracy': 0.9}, 'clinic': {'accuracy': 0.7}},
      ungated_sites=['clinic'], site_thresholds={'busi': 0.25})
  assert model_card.from_json(model_card.to_json(card)) == card
  section = model_card.to_markdown(card).split('## Where it should not be used')[1]
  assert 'outside the sites of its test split (busi, clinic)' in section
  assert 'figures at clinic: too few malignant test scans' in section
  assert 'At busi with the served threshold: use its own, 0.2500' in section
  assert '`not_sure`' in section
  fields = dataclasses.asdict(_card(None))
  del fields['ungated_sites'], fields['site_thresholds']   # a card written before them
  old = model_card.from_json(json.dumps(fields))
  assert old.ungated_sites == [] and old.site_thresholds == {}
  text = model_card.to_markdown(old)
  assert 'outside the one unnamed site of its test split' in text
  single = dataclasses.replace(old, site_metrics={'default': {'accuracy': 0.9}})
  assert 'outside the one unnamed site of its test split' in model_card.to_markdown(single)
  assert 'too few malignant' not in text and 'use its own' not in text
