"""Training: labels, model fitting, ONNX export with golden vectors, and release artifacts."""
