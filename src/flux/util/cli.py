"""`CLIMain`: run a command's ``main()`` and exit (part of `flux.util`)."""

import os
import sys


class CLIMain:
    """Run a command's ``main()`` and exit.

    Use as ``CLIMain(LOGGER)(main)`` or as a decorator on ``main`` (which
    runs it at once), or as a context manager around the body. An
    exception is logged as its ``strerror`` (or ``str()``) and the process
    exits 1; `SystemExit` passes its code through; Ctrl-C exits 130.
    """

    def __init__(self, logger=None):
        import logging

        self.logger = logger if logger is not None else logging.getLogger()

    def _exit_code(self, exc):
        if exc is None:
            return 0
        if isinstance(exc, SystemExit):
            return exc.code
        if isinstance(exc, KeyboardInterrupt):
            return 130
        message = getattr(exc, "strerror", None) or str(exc)
        self.logger.error(message)
        return 1

    def __call__(self, main_func):
        import logging

        level = os.environ.get("FLUX_PYCLI_LOGLEVEL", "INFO")
        logging.basicConfig(
            level=int(level) if level.isdigit() else level,
            format="%(name)s: %(levelname)s: %(message)s",
        )
        try:
            main_func()
            code = 0
        except (Exception, SystemExit, KeyboardInterrupt) as exc:  # noqa: B902
            code = self._exit_code(exc)
        logging.shutdown()
        sys.exit(code)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        code = self._exit_code(exc)
        sys.exit(code)
