"""Edge agent: one process per gateway, local inference on signed ONNX models."""
