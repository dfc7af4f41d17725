"""The shared runtime below the services: database access and the bulk sink, the
coordinator client, logging, processes, migrations and start-up checks.

It imports only :mod:`schemas` (and :mod:`migrations`, to run them); the services
(coordinator, crawler, scoring, simulator) import it, and the ``soundfleet`` package
(CLI, demo, report) stands above them all.
"""
