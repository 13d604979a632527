# The image every Kubeflow Pipelines step runs: the official TFX image (Python
# 3.10, TensorFlow with CUDA, Beam's worker boot program) with exactly the
# packages of requirements.lock, and this project's code.
# Build it from the checkout you compile the pipeline from: the compiled spec
# fingerprints the model code (see docs/kubeflow.md).
#
# For a reproducible build, pin the base by digest once you have pulled it:
#   docker pull tensorflow/tfx:1.16.0
#   docker inspect --format '{{index .RepoDigests 0}}' tensorflow/tfx:1.16.0
# and write the result here, e.g. FROM tensorflow/tfx:1.16.0@sha256:<digest>.
FROM tensorflow/tfx:1.16.0

# orchestration/kubeflow/configs.py's IMAGE_PROJECT_DIR: the compiled spec refers
# to files below it, such as the curated schema.
WORKDIR /pipeline

# The versions the tests ran with, every one: the lock is a complete freeze, so
# --no-deps keeps pip from resolving anything on top of it. Packages of the
# base image the lock does not name stay as they are; the project imports none.
COPY requirements.lock .
RUN pip install --no-cache-dir --no-deps -r requirements.lock

COPY contracts/ contracts/
COPY dataset/ dataset/
COPY blessing/ blessing/
COPY serving/ serving/
COPY components/ components/
COPY models/ models/
COPY pipeline/ pipeline/
# The tasks' entrypoint, orchestration/kubeflow/entrypoint.py.
COPY orchestration/ orchestration/
COPY schema/ schema/

# The steps need no root: they read and write object storage and /tmp only.
RUN useradd --uid 1000 --create-home --shell /usr/sbin/nologin pipeline
USER 1000

# TF Transform and TFMA need Keras 2; the executors import the project by module path.
ENV TF_USE_LEGACY_KERAS=1 \
    PYTHONPATH=/pipeline
