"""nsa_train: a Native Sparse Attention trainer.

This package's ``__init__`` must stay free of torch imports: the terminal tools
(``nsa_tui``) import the stdlib-only parts (``nsa_train.telemetry.schema``,
``nsa_train.config``) and must start fast on machines without torch.
"""

__version__ = "0.1.0"
