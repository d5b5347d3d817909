"""Training, tuning, evaluation, ONNX export and batch scoring of scikit-learn models."""
