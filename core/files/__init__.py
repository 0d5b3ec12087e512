"""The engine's weights on disk: adapter, trunk and engine files, the authors' checkpoints."""
