"""Where the app's own files are: app.py, pages/, ui/, assets/ (the shipped
reference runs, the sample images) and .streamlit/config.toml.

In a clone, and in an editable install of it, they sit beside the package
at the repository's top level. A wheel has no top level of the project's
own in site-packages, so it carries them inside the package, in
resexplorer/_app (pyproject.toml maps them there). Every module that reads
one of them asks here, so the two layouts are told apart once.
"""

from __future__ import annotations

from pathlib import Path

INSTALLED_FOLDER = "_app"  # pyproject.toml's [tool.setuptools.package-dir] names it too

_PACKAGE = Path(__file__).resolve().parent


def _app_root() -> Path:
    """The installed copy if the package carries one, else the clone's top
    level. Asked in this order: a clone never has resexplorer/_app, while an
    installed package's parent is site-packages, where another project's
    app.py could be."""
    installed = _PACKAGE / INSTALLED_FOLDER
    return installed if (installed / "app.py").is_file() else _PACKAGE.parent


APP_ROOT = _app_root()
APP_SCRIPT = APP_ROOT / "app.py"  # what `streamlit run` starts (the `app` command)
ASSETS_DIR = APP_ROOT / "assets"
