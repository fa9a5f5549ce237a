"""``flux uri [--remote|--local] [--wait] TARGET``: print the URI of a Flux
instance (spec 24.2).

TARGET is a native URI, ``jobid:PATH`` (the default scheme: a bare job id
works, ``jobid:ID1/ID2`` goes down one instance per id), ``pid:PID``, or any
scheme a ``flux.uri.resolvers`` plugin handles.  ``--local`` prints the
``local://`` form, ``--remote`` the ``ssh://host/path`` one (``--local`` is
the default when ``FLUX_URI_RESOLVE_LOCAL`` is set); ``--wait`` waits for a
job that has not started yet to post its URI.  An error is one line on
stderr and exit status 1.
"""

import argparse
import os
import sys

from fluxrm.cli.argparser import Parser


def parse_args(argv, prog, plugins):
    p = Parser(prog="flux uri", formatter_class=argparse.RawDescriptionHelpFormatter,
               description="Print the URI of a Flux instance given as TARGET.",
               epilog="Schemes of TARGET:\n" + "\n".join(
                   f"  {name:<8} {text}" for name, text in sorted(plugins.items())))
    p.building(True)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--remote", action="store_true",
                       help="print the remote (ssh://) form of the URI")
    which.add_argument("--local", action="store_true",
                       default=bool(os.environ.get("FLUX_URI_RESOLVE_LOCAL")),
                       help="print the local (local://) form of the URI")
    p.add_argument("--wait", action="store_true",
                   help="wait for the job to start and post its URI")
    p.add_argument("target", metavar="TARGET",
                   help="jobid:ID, pid:PID, a job id, or a native URI")
    p.building(False)
    return p.parse_args(argv)


def resolve(target, wait=False):
    """The ``JobURI`` of ``target``; ``ValueError``/``OSError`` if none."""
    from flux.uri import FluxURIResolver

    resolver = FluxURIResolver()
    if wait:
        target += "&wait" if "?" in target else "?wait"
    try:
        return resolver.resolve(target)
    except NotImplementedError as exc:
        raise ValueError(str(exc)) from None


def main(argv, prog="flux-uri", command="uri"):
    from flux.uri import FluxURIResolver

    args = parse_args(argv, prog, FluxURIResolver().plugins())
    try:
        uri = resolve(args.target, args.wait)
        text = uri.remote if args.remote else uri.local if args.local else uri.uri
    except (OSError, ValueError) as exc:
        print(f"{prog}: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return 1
    print(text)
    return 0
