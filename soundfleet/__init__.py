"""soundfleet: the CLI and the shared runtime (settings, logging, database, sink)."""

__version__ = "0.1.0"
