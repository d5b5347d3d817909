"""Deployment of registered ONNX models to inference endpoints on OpenStack."""
