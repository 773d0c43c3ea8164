"""The usage-pattern model's output names, in a module the monitors can import without loading scikit-learn (the
model's own module, ``cloud.training.usage_pattern``, does)."""

#: the regressor's output in the ONNX file
OUTPUT = "variable"
#: the output predictions carry and the label datasets hold: litres drawn in the next 24 hours
LABEL = "litres_next_24h"
