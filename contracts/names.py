"""Names the pipeline's parts find each other by: pipeline, nodes, files, properties.

ML Metadata records the run under these names, so the run summary, the report,
the Kubeflow compiler and the benches read what `create_pipeline` wrote.
"""

PIPELINE_NAME = 'busi_ultrasound'
MODEL_NAME = 'busi_classifier'

# Node ids of `create_pipeline`'s components.
DATA_FINGERPRINT = 'DataFingerprint'
EXAMPLE_GEN = 'ImageExampleGen'
SCHEMA_IMPORTER = 'ImportSchemaGen'
STATISTICS_GEN = 'StatisticsGen'
EXAMPLE_VALIDATOR = 'ExampleValidator'
VALIDATION_GATE = 'DataValidationGate'
DRIFT_CHECK = 'DataDriftCheck'
TRANSFORM = 'Transform'
TRAINER = 'Trainer'
EVALUATOR = 'ServedBaselineEvaluator'
PUSHER = 'Pusher'

# ImageExampleGen's data audit, beside its splits: for programs, and for people.
DATA_AUDIT_FILE = 'data_audit.json'
DATA_AUDIT_REPORT_FILE = 'data_audit.md'
# What the Trainer's run_fn writes beside the model: epochs, history, temperature.
TRAINING_SUMMARY_FILE = 'training_summary.json'
# Custom property of the Evaluator's blessing: the served version it compared
# against ('' when nothing was served yet).
BASELINE_VERSION_PROPERTY = 'baseline_served_version'
# Custom property of the Evaluator's blessing: the floors and the regression
# tolerance it applied (JSON), which a run may set without recompiling.
BLESSING_RULES_PROPERTY = 'blessing_rules'
# Custom property of the Trainer's model: the training configuration it ran
# with (JSON), the compiled one with the run's epochs.
TRAINING_CONFIG_PROPERTY = 'training_config'
# Custom properties of the Trainer's model: the served version folder its
# weights started from ('' for the family's initial weights), and the one line
# that says so or why a warm start was not possible ('' when none was asked for).
STARTED_FROM_PROPERTY = 'started_from'
WARM_START_PROPERTY = 'warm_start'
# The key of the Trainer's custom_config that hands run_fn the version folder
# to start from; added by the Trainer's executor, never compiled in.
WARM_START_FROM_KEY = 'warm_start_from'
# The per-site gate's verdicts, beside TFMA's output in the evaluation artifact.
SITE_GATE_FILE = 'site_gate.json'

# The metrics the blessing gates on, as TFMA files them (pipeline/eval_config.py),
# and the per-class example count the per-site gate reads (`<class>` + suffix).
EXAMPLE_COUNT_METRIC = 'example_count'
ACCURACY_METRIC = 'accuracy'                       # at the top class
DECISION_ACCURACY_METRIC = 'accuracy_at_decision'  # three-way, at the operating point
AUC_METRIC = 'auc'
MALIGNANT_SENSITIVITY_METRIC = 'malignant_sensitivity'
MALIGNANT_SPECIFICITY_METRIC = 'malignant_specificity'
CLASS_EXAMPLES_SUFFIX = '_examples'

# Module paths of the functions Transform and Trainer import.
PREPROCESSING_FN = 'models.preprocessing.preprocessing_fn'
RUN_FN = 'models.run_fn.run_fn'
