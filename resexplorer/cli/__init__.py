"""The top layer: the command line (main.py) and the tools that build what
the app ships (reference_build.py: the reference runs)."""

from .main import main

__all__ = ["main"]
