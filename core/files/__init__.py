"""Files on disk: atomic writes, adapter, trunk and engine files, the authors' checkpoints."""
