"""The network: the shared trunk, one Keras model per domain, merging, classifying."""
