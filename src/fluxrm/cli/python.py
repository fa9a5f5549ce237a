"""``flux python``: the interpreter that has this ``flux`` package."""

import os
import sys


def main(argv, prog="flux-python", command="python"):
    os.execv(sys.executable, [sys.executable] + list(argv))
