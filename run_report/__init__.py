"""The run report: one self-contained HTML page per pipeline run.

`build.build_report` reads a run back from ML Metadata and its artifacts and
writes `<output dir>/reports/<run>.html`: data, training, evaluation on the
test split, the push decision and Grad-CAM explanations, with every plot
embedded so the file opens offline and can be mailed as it is.
"""
