"""`resexplorer app`: the app, served as `streamlit run app.py` serves it,
from any working folder and from an installed wheel alike.

The app's files are found where the package finds them (app_files.py).
Streamlit reads the .streamlit/config.toml beside the script it runs, over
the user's and the working folder's own, so the app's settings hold
wherever it is started; the working folder stays the user's, and with it
the default runs folder (never site-packages).
"""

from __future__ import annotations

import sys

from ..app_files import APP_SCRIPT
from ..processes import become


def streamlit_arguments(extra: list[str]) -> list[str]:
    """The `streamlit` command's arguments that serve the app; `extra`:
    streamlit's own flags (--server.port 8502), passed on as given."""
    return ["run", str(APP_SCRIPT), *extra]


def serve_app(extra: list[str]) -> int:
    """Serve the app until it is stopped (Ctrl+C): this process becomes
    `python -m streamlit run <app.py> ...`, so signals and the exit code are
    the server's own, and the package itself never imports streamlit."""
    return become([sys.executable, "-m", "streamlit", *streamlit_arguments(extra)])
