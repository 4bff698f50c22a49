"""CLI command groups; each module defines ``register(app)``. Order = order in ``healthtrace --help``."""

COMMAND_MODULES: tuple[str, ...] = ("extract", "extractor", "memory", "scoring", "metrics", "calibration", "review", "story",
                                   "server", "jobs")
