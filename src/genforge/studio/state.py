"""What the routes share: the settings a studio runs with, its home, job store, supervisor and
the models it keeps loaded for quick samples."""
from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from .. import api
from .db import Store
from .home import Home
from .jobs import Refs
from .security import LOOPBACK_NAMES
from .supervisor import Supervisor
from .uploads import Limits

MODELS_KEPT = 2            # loaded models kept for quick samples


@dataclass
class Settings:
    """How a studio runs (genforge studio's flags; tests set the rest)."""

    home: Path
    workers: int = 1
    token: str | None = None           # required on every request when set (non-loopback hosts)
    hosts: tuple[str, ...] = LOOPBACK_NAMES  # Host names answered without a token
    run_jobs: bool = True              # start the supervisor (tests may drive jobs themselves)
    limits: Limits = field(default_factory=Limits)  # what one dataset upload may unpack to
    worker_env: dict[str, str] | None = None


class Studio:
    """What the routes share: the home, the job store, the supervisor, loaded models."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.home = Home(settings.home).make()
        self.store = Store(self.home.db)
        self.refs = Refs(self.home, self.store)
        self.supervisor = Supervisor(self.home, self.store, settings.workers,
                                     env=settings.worker_env)
        self.models: OrderedDict[str, api.GenerativeModel] = OrderedDict()
        self.sampling = threading.Lock()  # one quick generation at a time: bounded memory
        self.sampling_turn = asyncio.Lock()  # and its queue, waiting without a thread

    def start(self) -> None:
        self.home.sweep(self.store.dataset_folders(), self.store.input_paths())
        if self.settings.run_jobs:
            self.supervisor.start()

    def stop(self) -> None:
        if self.settings.run_jobs:
            self.supervisor.stop()

    def model(self, folder: str) -> api.GenerativeModel:
        """A loaded model (on the CPU), kept for the next request."""
        if folder not in self.models:
            self.models[folder] = api.load(folder, device="cpu")
            while len(self.models) > MODELS_KEPT:
                self.models.popitem(last=False)
        self.models.move_to_end(folder)
        return self.models[folder]
