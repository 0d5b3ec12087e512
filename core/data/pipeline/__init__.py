"""From images to what the trainer reads, whatever the source: decoding, preprocessing,
statistics and the ``tf.data`` datasets. Sources (``core.data.sources``) build on this."""
