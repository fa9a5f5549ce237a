"""``flux pgrep`` / ``flux pkill``: find (or cancel/signal) jobs by name.

``EXPRESSION`` is a regular expression searched in each job's name;
``FIELD:EXPR`` searches another attribute (e.g. ``queue:debug``), and
``ID1..ID2`` selects a range of job ids.  Jobs are the current user's
pending and running ones unless ``-a`` (all states), ``-A`` (all users),
``-u USER`` or ``-f STATES`` say otherwise.

``flux pgrep`` prints one line per match (``-o FORMAT``, default
``{id.f58}``; ``-c`` prints the count instead) and exits 1 if nothing
matched.  ``flux pkill`` cancels the matches (``-s SIG``: signals them
instead) and prints how many; it exits 1 if nothing matched or any
request failed.
"""

import re
import sys

from fluxrm.cli.argparser import Parser


def parse_args(argv, prog, command):
    p = Parser(prog=prog.replace("-", " ", 1),
               description=("List" if command == "pgrep" else "Cancel")
               + " jobs whose name matches EXPRESSION (a regular expression; "
                 "FIELD:EXPR for another attribute; ID1..ID2 for a range).")
    p.building(True)
    p.add_argument("-a", action="store_true", dest="all_states",
                   help="match jobs in every state, inactive included")
    p.add_argument("-A", action="store_true", dest="all_users",
                   help="match the jobs of every user")
    p.add_argument("-u", "--user", metavar="USER",
                   help="match the jobs of USER")
    p.add_argument("-f", "--filter", metavar="STATES",
                   help="match jobs in STATES (e.g. pending,running)")
    p.add_argument("-q", "--queue", metavar="QUEUE", help="match jobs in QUEUE")
    p.add_argument("--max-entries", type=int, default=1000, metavar="N",
                   help="consider at most N jobs (default 1000)")
    if command == "pgrep":
        p.add_argument("-c", "--count", action="store_true",
                       help="print the number of matches only")
        p.add_argument("-o", "--format", default="{id.f58}", metavar="FORMAT",
                       help="output format (flux jobs fields; default {id.f58})")
        p.add_argument("-n", "--no-header", action="store_true",
                       help="accepted for compatibility")
    else:
        p.add_argument("-s", "--signal", metavar="SIG",
                       help="send SIG to running matches instead of canceling")
        p.add_argument("--wait", action="store_true",
                       help="wait for the matched jobs to become inactive")
    p.add_argument("expression", nargs="+", metavar="EXPRESSION")
    p.building(False)
    return p.parse_args(argv)


def _matcher(expression):
    from flux.job import JobID

    if ".." in expression:
        lo, _, hi = expression.partition("..")
        try:
            lo_id, hi_id = int(JobID(lo)), int(JobID(hi))
        except (ValueError, TypeError, OSError):
            raise ValueError(f"invalid job id range '{expression}'") from None
        return lambda job: lo_id <= int(job.id) <= hi_id
    field, sep, rx = expression.partition(":")
    if not sep or not re.fullmatch(r"[a-z_]+", field):
        field, rx = "name", expression
    try:
        regex = re.compile(rx)
    except re.error as exc:
        raise ValueError(f"invalid expression '{rx}': {exc}") from None
    return lambda job: regex.search(str(getattr(job, field, ""))) is not None


def matching_jobs(h, args):
    from flux.job import JobList

    if args.filter:
        filters = [args.filter]
    elif args.all_states:
        filters = ["pending", "running", "inactive"]
    else:
        filters = ["pending", "running"]
    user = "all" if args.all_users else args.user
    jobs = JobList(h, filters=filters, user=user, max_entries=args.max_entries,
                   queue=args.queue).jobs()
    matchers = [_matcher(e) for e in args.expression]
    return [job for job in jobs if any(m(job) for m in matchers)]


def main(argv, prog="flux-pgrep", command="pgrep"):
    import flux

    args = parse_args(argv, prog, command)
    try:
        h = flux.Flux()
        jobs = matching_jobs(h, args)
        if command == "pgrep":
            return pgrep(args, jobs)
        return pkill(h, args, jobs, prog)
    except (ValueError, TypeError) as exc:
        from fluxrm.cli.main import report_error

        report_error(prog, exc, str(exc))  # the traceback too when debugging
        return 1


def pgrep(args, jobs):
    if args.count:
        print(len(jobs))
        return 0 if jobs else 1
    from flux.job import JobInfoFormat

    fmt = JobInfoFormat(args.format)
    for job in jobs:
        print(fmt.format(job))
    return 0 if jobs else 1


def pkill(h, args, jobs, prog):
    if not jobs:
        print(f"{prog}: No matching jobs found", file=sys.stderr)
        return 1
    if args.signal:
        from fluxrm.cli.job import _signum

        signum = _signum(args.signal)
        futures = [(j, h.rpc("job-manager.kill", {"id": int(j.id), "signum": signum}))
                   for j in jobs]
        verb = "Signaled"
    else:
        futures = [(j, h.rpc("job-manager.raise",
                             {"id": int(j.id), "type": "cancel", "severity": 0,
                              "note": "flux pkill"})) for j in jobs]
        verb = "Canceled"
    errors = 0
    for job, f in futures:
        try:
            f.get()
        except OSError as exc:
            errors += 1
            print(f"{prog}: {job.id.f58}: {exc.strerror}", file=sys.stderr)
    if args.wait and not args.signal:
        from flux.job import result_async

        for f in [result_async(h, j.id) for j in jobs]:
            f.get()
    print(f"{prog}: {verb} {len(jobs) - errors} jobs", file=sys.stderr)
    return 1 if errors else 0
