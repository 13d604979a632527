"""Kubeflow Pipelines v2: compiling the DAG, the platform it runs on, submission."""
