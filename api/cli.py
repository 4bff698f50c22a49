"""The ``healthtrace`` command line.

Each group of commands lives in its own module under :mod:`api.commands` and registers itself here.
Modules import heavy libraries inside the command functions, so ``healthtrace extract`` starts fast.
"""

from __future__ import annotations

import sys

import typer

from extractors.errors import HealthtraceError

app = typer.Typer(
    name="healthtrace",
    help="Explainable customer-health scoring: every point traces to cited words or a usage metric.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Explainable customer-health scoring: every point traces to cited words or a usage metric."""


def _register() -> None:
    from api.commands import COMMAND_MODULES

    import importlib

    for name in COMMAND_MODULES:
        module = importlib.import_module(f"api.commands.{name}")
        module.register(app)


_register()


def main() -> None:
    """Entry point: expected failures print one clear line and exit 1, never a traceback."""
    from pydantic import ValidationError

    from extractors.redact import install_log_redaction, redact

    install_log_redaction()
    try:
        app()
    except HealthtraceError as e:
        print(f"error: {redact(str(e))}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:  # the file system said no (read-only or missing folder): one line, no traceback
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        print(f"error: {redact(e.strerror or str(e))}{where}", file=sys.stderr)
        sys.exit(1)
    except ValidationError as e:
        if e.title != "Settings":
            raise
        for err in e.errors()[:5]:  # a bad HEALTHTRACE_ variable: name it, say why, no traceback
            field = str(err["loc"][0]) if err.get("loc") else "?"
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            print(f"error: setting HEALTHTRACE_{field.upper()}: {redact(msg)}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
