"""The PySide6 window over core: the app and main window here, backend, panels and actions below."""
