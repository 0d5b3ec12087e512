"""The engine behind the window: the Backend protocol, its real implementation, jobs."""
