"""Training and honest evaluation (needs the `train` extra): data from manifests,
augmentation, the loop, metrics, evaluation, comparison and ONNX export.
"""
