"""CLI command groups; each module defines ``register(app)``. Order = order in ``healthtrace --help``."""

COMMAND_MODULES: tuple[str, ...] = ("extract", "memory", "scoring", "calibration", "story", "server", "jobs")
