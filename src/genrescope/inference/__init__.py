"""From a model name or file to predictions: shipped models, runtimes, ensembles,
backbones, the Predictor and its Timeline, taxonomy and output formats.
"""
