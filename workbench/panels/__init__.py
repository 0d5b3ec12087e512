"""The window's widgets: panels, charts, fields and dialogs."""
