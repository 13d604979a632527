"""Temperature scaling: probabilities that mean what they say.

A network trained to low loss on a few hundred images is overconfident: among
the scans it calls malignant with 0.95, fewer than 95% are. Dividing its logits
by one temperature fitted on the eval split (Guo et al., 2017) fixes most of
that without changing any decision, since the ranking of the classes stays.
The softmax's log-probabilities are its logits up to a per-image constant, so
the scaling applies to the probabilities the network already outputs.
"""

import numpy as np
import tensorflow as tf

# Temperatures searched, on a log scale: from sharpening 20x to flattening 20x.
_LOG_TEMPERATURES = np.linspace(np.log(0.05), np.log(20.0), 601)
# Keeps log() finite where float32 softmax underflowed to exactly zero.
_EPSILON = 1e-12


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
  """The temperature that minimises the negative log-likelihood of `labels`.

  `probs` is [N, C] softmax output, `labels` [N] class indices. A grid search
  rather than gradient descent: the likelihood is one-dimensional and smooth,
  and a grid cannot diverge on a small or perfectly separated eval split.
  """
  if len(labels) == 0:
    return 1.0
  log_probs = np.log(np.asarray(probs, np.float64) + _EPSILON)
  temperatures = np.exp(_LOG_TEMPERATURES)
  scaled = log_probs[np.newaxis] / temperatures[:, np.newaxis, np.newaxis]
  log_norm = np.logaddexp.reduce(scaled, axis=2)
  true_class = scaled[:, np.arange(len(labels)), labels]
  nll = (log_norm - true_class).mean(axis=1)
  return float(temperatures[int(np.argmin(nll))])


def temperature_scale(probs: tf.Tensor, temperature: float) -> tf.Tensor:
  """softmax(logits / temperature), from the softmax output itself."""
  return tf.nn.softmax(tf.math.log(probs + _EPSILON) / temperature, axis=-1)
