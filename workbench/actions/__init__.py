"""What the window's buttons and menus do, wired to the session's jobs."""
