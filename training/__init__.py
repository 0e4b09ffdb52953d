"""Training a character's landmark model (PyTorch, CPU) and exporting it to OpenVINO IR; never imported by seamroto."""
