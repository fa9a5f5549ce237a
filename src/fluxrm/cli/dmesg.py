"""``flux dmesg [-C] [-c] [-f] [-n]``: the broker's log ring buffer."""

import argparse
import errno
import sys


def main(argv, prog="flux-dmesg", command="dmesg"):
    import flux
    from fluxrm.broker.broker import format_log_entry

    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("-C", "--clear", action="store_true", help="clear the buffer")
    parser.add_argument("-c", "--read-clear", action="store_true",
                        help="print, then clear the buffer")
    parser.add_argument("-f", "--follow", action="store_true",
                        help="keep printing new entries")
    parser.add_argument("-n", "--new", action="store_true",
                        help="with --follow, show only new entries")
    args = parser.parse_args(argv)
    h = flux.Flux()
    if not args.clear:
        fut = h.rpc("log.dmesg", {"follow": args.follow, "nobacklog": args.new},
                    flags=flux.constants.FLUX_RPC_STREAMING)
        while True:
            try:
                entry = fut.get()
            except OSError as exc:
                if exc.errno == errno.ENODATA:
                    break
                raise
            print(format_log_entry(entry), flush=args.follow)
            fut.reset()
    if args.clear or args.read_clear:
        h.rpc("log.clear").get()
    sys.stdout.flush()
    return 0
