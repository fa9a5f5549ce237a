"""``flux version``."""

import platform
import sys


def main(argv, prog="flux-version", command="version"):
    import argparse

    from fluxrm import __version__

    argparse.ArgumentParser(prog=prog, description="Print version information.").parse_args(argv)

    print(f"commands:    \t\t{__version__}")
    print(f"libflux-core:\t\t{__version__} (fluxrm, pure Python)")
    print(f"python:      \t\t{platform.python_version()} ({sys.executable})")
    return 0
