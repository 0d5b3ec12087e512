"""Standalone models of one domain (SavedModel, LiteRT, ONNX), built and verified."""
