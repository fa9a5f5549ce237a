"""``flux broker [OPTIONS] [COMMAND [ARGS...]]``: one broker of an instance.

This is the command a job runs to become a new Flux instance (``flux
batch``, ``flux alloc``, ``JobspecV1.from_nest_command``): one task per
node of the allocation, each starting a broker.  The brokers find each
other through the PMI server the parent's execution service gives every
job (``PMI_FD``, ``PMI_RANK``, ``PMI_SIZE``; without it the instance has
one broker), and learn from the environment that they are nested
(``fluxrm.cli.nesting.nested_attributes``: ``parent-uri``, ``jobid``,
``instance-level``, ``parent-kvs-namespace``).  Each broker sees the
resources its task was given: the cores it is bound to and the GPUs in
``CUDA_VISIBLE_DEVICES``, renumbered from 0.

Rank 0 runs COMMAND (default: an interactive ``$SHELL``) as the instance's
initial program and the instance ends with it: its exit status is
``flux broker``'s, so the job's.  With ``-Sbroker.rc2_none=1`` there is no
initial program: the instance runs until it is stopped (the job cancelled,
``SIGTERM``).  The other ranks run until rank 0 shuts the instance down.

Options are the broker's: ``-S/--setattr ATTR=VAL``, ``-c/--config-path
PATH``, ``--conf KEY=VAL``, plus ``-v/--verbose``.
"""

import argparse
import sys


def parse_args(argv, prog):
    parser = argparse.ArgumentParser(
        prog=prog, description="Start one broker of a Flux instance (the "
        "command a job runs to become a new instance).")
    parser.add_argument("-S", "--setattr", action="append", default=[],
                        metavar="ATTR=VAL", help="set a broker attribute")
    parser.add_argument("-c", "--config-path", metavar="PATH",
                        help="instance configuration (a TOML or JSON file, or"
                        " a directory of TOML files)")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VAL",
                        help="set a configuration key")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="say what happens on stderr")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="initial program and its arguments (rank 0)")
    args = parser.parse_args(argv)
    # the fields fluxrm.cli.start.run_instance reads
    args.broker_opts = []
    args.rundir = None
    args.test_size = 1
    return args


def no_initial_program(setattrs):
    """Whether ``-Sbroker.rc2_none`` asks for an instance without one."""
    for item in setattrs:
        name, _sep, value = item.partition("=")
        if name == "broker.rc2_none":
            return value not in ("0", "")
    return False


def missing_pmi(environ):
    """Why a broker in a job of several nodes cannot form one instance
    (no PMI: ``-o pmi=off``), or None.  Without this each node's broker
    would start an instance of its own and run the script there."""
    nnodes = environ.get("FLUX_JOB_NNODES", "")
    if environ.get("FLUX_JOB_ID") and nnodes.isdigit() and int(nnodes) > 1 \
            and not environ.get("PMI_FD"):
        return (f"the job spans {nnodes} nodes but has no PMI to bring their "
                "brokers together (was it submitted with -o pmi=off?)")
    return None


def main(argv, prog="flux-broker", command="broker"):
    import os

    from fluxrm.cli.start import run_instance

    args = parse_args(argv, prog)
    why = missing_pmi(os.environ)
    if why:
        print(f"{prog}: {why}", file=sys.stderr)
        return 1
    return run_instance(args, prog,
                        initial_program=not no_initial_program(args.setattr))
