# The image every Kubeflow Pipelines step runs: the official TFX image (Python
# 3.10, TensorFlow with CUDA) plus this project's code and the packages it adds.
# Build it from the checkout you compile the pipeline from: the compiled spec
# fingerprints the model code (see docs/kubeflow.md).
FROM tensorflow/tfx:1.16.0

# Versions in step with requirements.lock; tests/dockerfile_test.py checks them.
RUN pip install --no-cache-dir \
      pillow==12.3.0 \
      tf_keras==2.16.0

# orchestration/kubeflow/configs.py's IMAGE_PROJECT_DIR: the compiled spec refers
# to files below it, such as the curated schema.
WORKDIR /pipeline
COPY contracts/ contracts/
COPY dataset/ dataset/
COPY components/ components/
COPY models/ models/
COPY pipeline/ pipeline/
COPY schema/ schema/

# TF Transform and TFMA need Keras 2; the executors import the project by module path.
ENV TF_USE_LEGACY_KERAS=1 \
    PYTHONPATH=/pipeline
