"""The command line (``ram`` / ``python main.py <command>``) over the same engine."""

from core.cli.parser import build_parser, main

__all__ = ["build_parser", "main"]
