"""``flux ping [-c COUNT] [-p PAD] TARGET``: echo requests to ``TARGET.ping``."""

import argparse
import time


def main(argv, prog="flux-ping", command="ping"):
    import flux

    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("-c", "--count", type=int, default=None,
                        help="stop after COUNT requests (default: forever)")
    parser.add_argument("-p", "--pad", type=int, default=0, help="payload bytes")
    parser.add_argument("-i", "--interval", type=float, default=1.0)
    parser.add_argument("target", help="service name (e.g. broker) or rank")
    args = parser.parse_args(argv)
    target = args.target
    service, nodeid = target, flux.constants.FLUX_NODEID_ANY
    if target.isdigit():
        service, nodeid = "broker", int(target)
    h = flux.Flux()
    seq = 0
    while args.count is None or seq < args.count:
        t0 = time.monotonic()
        rsp = h.rpc(f"{service}.ping", {"seq": seq, "pad": "x" * args.pad},
                    nodeid=nodeid).get()
        ms = (time.monotonic() - t0) * 1000
        print(f"{target}.ping: seq={seq} pad={args.pad} time={ms:.3f} ms "
              f"({rsp.get('route', '')})")
        seq += 1
        if args.count is None or seq < args.count:
            time.sleep(args.interval)
    return 0
