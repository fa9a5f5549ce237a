"""``flux getattr NAME``, ``flux setattr NAME VALUE``, ``flux lsattr [-v]``."""

import argparse
import sys


def main(argv, prog="flux-getattr", command="getattr"):
    import flux

    parser = argparse.ArgumentParser(prog=prog)
    if command == "getattr":
        parser.add_argument("name")
    elif command == "setattr":
        parser.add_argument("name")
        parser.add_argument("value")
    else:
        parser.add_argument("-v", "--values", action="store_true",
                            help="show values as well as names")
    args = parser.parse_args(argv)
    h = flux.Flux()
    if command == "getattr":
        try:
            print(h.attr_get(args.name))
        except FileNotFoundError:
            print(f"{prog}: {args.name}: no such attribute", file=sys.stderr)
            return 1
    elif command == "setattr":
        h.attr_set(args.name, args.value)
    else:
        for name in h.rpc("attr.list").get()["names"]:
            if args.values:
                try:
                    value = h.attr_get(name)
                except OSError:
                    value = "-"
                print(f"{name:<20} {value}")
            else:
                print(name)
    return 0
