"""``flux keygen [--force] [-n NAME] [--meta KEY=VAL,...] [FILE]``.

Writes a new CURVE certificate to FILE (mode 0600), the one file that all
brokers of a config-booted instance share as ``bootstrap.curve_cert``.  An
existing FILE is refused unless ``--force`` (then replaced atomically).
Without FILE nothing is written, and a warning says so, as upstream does.
"""

import sys

from fluxrm.cli.argparser import Parser


def _meta_pairs(words):
    pairs = {}
    for word in words:
        for item in word.split(","):
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise ValueError(f"--meta {item!r}: expected KEY=VALUE")
            pairs[name] = value
    return pairs


def main(argv, prog="flux-keygen", command="keygen"):
    parser = Parser(prog="flux keygen",
                    description="Generate a CURVE certificate for the overlay "
                                "network of a Flux instance (mode 0600).")
    parser.add_argument("-f", "--force", action="store_true",
                        help="replace FILE if it exists")
    parser.add_argument("-n", "--name", help="the certificate's name "
                        "(default: this host's name)")
    parser.add_argument("--meta", action="append", default=[], metavar="KEY=VAL,...",
                        help="add metadata to the certificate (repeatable)")
    parser.add_argument("file", nargs="?", metavar="FILE",
                        help="where to write the certificate")
    args = parser.parse_args(argv)

    from fluxrm.boot.cert import default_metadata, write_certificate

    metadata = default_metadata(args.name)
    metadata.update(_meta_pairs(args.meta))
    if args.file is None:
        print(f"{prog}: WARNING: add a FILE argument to save the certificate",
              file=sys.stderr)
        return 0
    write_certificate(args.file, metadata=metadata, force=args.force)
    return 0
