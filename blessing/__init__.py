"""What decides whether a trained model is pushed.

`rules` holds the floors and tolerances and how they become TFMA thresholds;
the Evaluator applies them and records them on its blessing, the Pusher reads
them back from there. `site_gate` applies them per site after TFMA,
`clinical_metrics` computes the rates they gate on, and `evaluation_metrics`
reads the Evaluator's output back by metric name.
"""
