"""Plain values every layer may read: configuration, data and serving contracts, names.

Nothing here imports TensorFlow, so command-line programs and the report can use
it without loading a model.
"""
