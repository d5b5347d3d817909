"""Machine learning on prepared partitions: training, tuning, evaluation, ONNX export."""
