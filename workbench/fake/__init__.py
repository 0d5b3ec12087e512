"""A fake engine for fast widget tests and demos (``python main.py gui --fake``)."""
