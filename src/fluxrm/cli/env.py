"""``flux env [CMD...]``: print the Flux environment, or run CMD in it."""

import os
import shlex
import sys


def main(argv, prog="flux-env", command="env"):
    if argv and argv[0] in ("-h", "--help"):
        print(f"Usage: {prog} [COMMAND [ARGS...]]")
        return 0
    if argv:
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            print(f"{prog}: {argv[0]}: {exc.strerror}", file=sys.stderr)
            return 127
    for name in ("FLUX_URI", "FLUX_PYTHON"):
        if name in os.environ:
            print(f"export {name}={shlex.quote(os.environ[name])}")
    return 0
