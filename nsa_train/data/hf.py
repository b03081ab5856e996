"""Importing Hugging Face `datasets` with the offline switches set when no network is wanted."""

from __future__ import annotations

import os
import sys
from types import ModuleType


def import_datasets(offline: bool) -> ModuleType:
    """Import `datasets`; when offline, make sure neither it nor the hub client ever opens a connection.

    The switches are read at import time, so they go into os.environ first; if `datasets` was already
    imported by someone else, its module-level copies are flipped too.
    """
    if offline:
        os.environ["HF_DATASETS_OFFLINE"] = "1"
        os.environ["HF_HUB_OFFLINE"] = "1"
    already = "datasets" in sys.modules
    import datasets

    if offline and already:
        import huggingface_hub.constants

        datasets.config.HF_HUB_OFFLINE = True
        datasets.config.HF_DATASETS_OFFLINE = True
        huggingface_hub.constants.HF_HUB_OFFLINE = True
    return datasets
