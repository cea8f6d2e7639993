"""How the operator set this server up: one user on their own machine (the
default), or a shared server for a class.

The operator alone chooses, with environment variables set where the app
starts (a browser cannot change them):

    RESEXPLORER_SHARED=1            shared-server mode
    RESEXPLORER_RUNS=/srv/runs      the runs folder (every mode reads it)
    RESEXPLORER_DATA=/srv/images    an image folder to offer (optional)
    RESEXPLORER_MAX_MODELS=2        caps on one job, in shared mode
    RESEXPLORER_MAX_EPOCHS=30
    RESEXPLORER_MAX_TRAIN_IMAGES=10000

In shared mode the folders are the operator's (the sidebar shows them and
takes no path), deleting and importing runs is off, and a job must keep
within the caps, which the Train page says before Start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ConfigError

TRUE_WORDS = {"1", "true", "yes", "on"}
CAPS = {  # environment variable -> (field, default)
    "RESEXPLORER_MAX_MODELS": ("max_models", 2),
    "RESEXPLORER_MAX_EPOCHS": ("max_epochs", 30),
    "RESEXPLORER_MAX_TRAIN_IMAGES": ("max_train_images", 10_000),
}


@dataclass(frozen=True)
class ServerPolicy:
    shared: bool
    runs_dir: str  # the operator's runs folder (the default one where the visitor may choose)
    data_folder: str  # the operator's image folder, "" for none
    max_models: int
    max_epochs: int
    max_train_images: int

    def caps_text(self) -> str:
        return (
            f"at most {self.max_models} model{'s' if self.max_models != 1 else ''}, "
            f"{self.max_epochs} epochs and {self.max_train_images:,} training images"
        )

    def job_problems(self, models: int, epochs: int, train_images: int) -> list[str]:
        """What a job of this size breaks of the caps (none outside shared mode)."""
        if not self.shared:
            return []
        checks = [
            (models, self.max_models, "models"),
            (epochs, self.max_epochs, "epochs"),
            (train_images, self.max_train_images, "training images"),
        ]
        return [f"{asked:,} {what} (at most {cap:,})" for asked, cap, what in checks if asked > cap]


def server_policy(environ: Mapping[str, str] = os.environ) -> ServerPolicy:
    """The policy the environment sets; ConfigError names a cap that is not
    a positive whole number, so the operator hears of it at the first page."""
    caps = {}
    for variable, (field, default) in CAPS.items():
        text = environ.get(variable, "").strip()
        try:
            caps[field] = int(text) if text else default
        except ValueError:
            caps[field] = 0
        if caps[field] < 1:
            raise ConfigError(f"{variable}={text!r}: a cap must be a whole number of 1 or more")
    return ServerPolicy(
        shared=environ.get("RESEXPLORER_SHARED", "").strip().lower() in TRUE_WORDS,
        runs_dir=environ.get("RESEXPLORER_RUNS", "").strip() or "runs",
        data_folder=environ.get("RESEXPLORER_DATA", "").strip(),
        **caps,
    )
