"""How the one DAG is run: Beam arguments, and Kubeflow Pipelines in `kubeflow/`."""
