"""Weights on disk: adapter files, the trunk and the whole engine, the authors' checkpoints."""
