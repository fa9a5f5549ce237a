"""``flux cancel [-n] [-q] [-m NOTE] [--all] [-u USER] [-S STATES] [ID...]``.

With job ids: raise a ``cancel`` exception on each (``job-manager.raise``,
all requests in flight at once); a failure is reported as ``flux-cancel:
<id>: <error>`` and makes the exit code 1.  With ``--all`` (or a ``-u``/
``-S`` selection, which cannot be mixed with ids): cancel every matching
active job with one ``job-manager.raiseall`` (your jobs by default,
``-u all`` for everyone's), reporting ``Canceled N jobs (E errors)``,
``Matched 0 jobs``, or with ``-n`` ``Would cancel N jobs``.
"""

import sys

from fluxrm.cli.argparser import Parser

PROG = "flux-cancel"


def parse_args(argv, prog):
    p = Parser(prog=prog.replace("-", " ", 1),
               description="Cancel jobs: the given ones, or with --all every "
                           "matching active job.")
    p.building(True)
    p.add_argument("-n", "--dry-run", action="store_true",
                   help="only count the jobs that would be canceled")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print no summary")
    p.add_argument("-m", "--message", metavar="NOTE", default="",
                   help="reason recorded in the cancel exception")
    p.add_argument("--all", action="store_true",
                   help="cancel all your active jobs (see -u, -S)")
    p.add_argument("-u", "--user", metavar="USER",
                   help="with --all, jobs of USER ('all' for everyone)")
    p.add_argument("-S", "--states", metavar="STATES",
                   help="with --all, only jobs in STATES (pending, running, "
                        "depend, priority, sched, run; default: active)")
    p.add_argument("jobids", nargs="*", metavar="ID")
    p.building(False)
    return p.parse_args(argv)


def main(argv, prog="flux-cancel", command="cancel"):
    from fluxrm.cli.job import _userid, parse_jobid, state_mask
    from fluxrm.cli.subcommands import Fail

    args = parse_args(argv, prog)
    try:
        selecting = args.all or args.user is not None or args.states is not None
        if args.jobids and selecting:
            raise Fail("job ids cannot be used with --all, --user or --states", 2)
        if not args.jobids and not selecting:
            raise Fail("specify job ids, or --all", 2)
        if selecting:
            return cancel_all(args, _userid(args.user), state_mask)
        ids = [parse_jobid(j) for j in args.jobids]
        return cancel_ids(args, ids)
    except Fail as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.code


def _handle():
    import flux

    return flux.Flux()


def cancel_ids(args, ids):
    if args.dry_run:
        if not args.quiet:
            print(f"{PROG}: Would cancel {len(ids)} jobs", file=sys.stderr)
        return 0
    from fluxrm.cli.jobrpc import rpc_each

    return rpc_each(_handle(), PROG, ids, "job-manager.raise",
                    lambda j: {"id": int(j), "type": "cancel", "severity": 0,
                               "note": args.message})


def cancel_all(args, userid, state_mask):
    import flux.constants as C

    states = state_mask(args.states, C.FLUX_JOB_STATE_ACTIVE)
    h = _handle()
    rsp = h.rpc("job-manager.raiseall", {
        "dry_run": args.dry_run, "userid": userid, "states": states,
        "severity": 0, "type": "cancel", "note": args.message}).get()
    count, errors = rsp.get("count", 0), rsp.get("errors", 0)
    if not args.quiet:
        if args.dry_run:
            text = f"Would cancel {count} jobs"
        elif count == 0:
            text = "Matched 0 jobs"
        else:
            text = f"Canceled {count} jobs ({errors} errors)"
        print(f"{PROG}: {text}", file=sys.stderr)
    return 1 if errors else 0
