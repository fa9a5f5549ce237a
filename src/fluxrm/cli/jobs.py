"""``flux jobs [OPTIONS] [ID...]``: list jobs.

By default the current user's pending and running jobs, in job-list's
order (pending by priority, running by start time, inactive most recent
first), formatted with the ``default`` format of spec 8.4.  ``-a`` adds
inactive jobs, ``-A`` every user, ``-f STATES|RESULTS`` filters,
``--since``/``--name``/``-q``/``-i`` restrict, ``-c N`` caps the count
(1000), ``-o FORMAT`` picks a named format (``default``, ``long``,
``deps``, ``endreason``, ``cute``, ``help`` lists them, more may come from
``flux-jobs.toml`` config files) or a format string (spec 12.3).
``--json`` prints ``{"jobs": [...]}`` (one object for a single id),
``--stats`` a summary line first, ``--stats-only`` just that line (exit 0
if any job is active, else 1).

``instance.*`` fields (``{instance.stats}``, ``{instance.progress}``...)
show what a job that runs a Flux instance is doing: every running child
instance is asked at once, and one that does not answer in time shows
blank (``flux.job.instance``).

``--watch`` lists the matching jobs, then follows the active ones through
the ``job-manager.events-journal`` stream, printing a new line for a job
each time it changes state, until all of them are inactive.

Unknown ids are reported on stderr and make the exit code 1.
"""

import errno
import sys

from fluxrm.cli.argparser import Parser

PROG = "flux-jobs"

FORMATS = {
    "default": {
        "description": "Default flux-jobs format string",
        "format": (
            "{id.f58:>12} ?:{queue:<8.8} +:{username:<8} {name:<10.10+} "
            "{status_abbrev:>2.2} {ntasks:>6} {nnodes:>6h} "
            "{contextual_time!F:>8h} {contextual_info}"
        ),
    },
    "cute": {
        "description": "Cute flux-jobs format string (default with emojis)",
        "format": (
            "{id.emoji:>12} ?:{queue:<8.8} +:{username:<8} {name:<10.10+} "
            "{status_emoji:>5.5} {ntasks:>6} {nnodes:>6h} "
            "{contextual_time!F:>8h} {contextual_info}"
        ),
    },
    "long": {
        "description": "Extended flux-jobs format string",
        "format": (
            "{id.f58:>12} ?:{queue:<8.8} +:{username:<8} {name:<10.10+} "
            "{status:>9.9} {ntasks:>6} {nnodes:>6h} "
            "{t_submit!d:%b%d %R::>12} {t_remaining!F:>12h} "
            "{contextual_time!F:>8h} {contextual_info}"
        ),
    },
    "deps": {
        "description": "Show job urgency, priority, and dependencies",
        "format": (
            "{id.f58:>12} ?:{queue:<8.8} +:{username:<8} {name:<10.10+} "
            "{urgency:<3} {priority:<12} {state:<8.8} {dependencies}"
        ),
    },
    "endreason": {
        "description": "Show why each job ended",
        "format": (
            "{id.f58:>12} ?:{queue:<8.8} +:{username:<8} {name:<10.10+} "
            "{status_abbrev:>2.2} {t_inactive!d:%b%d %R::>12h} "
            "{inactive_reason}"
        ),
    },
}

# a state change of a followed job is any of these main eventlog events
STATE_EVENTS = frozenset({"depend", "priority", "alloc", "finish", "clean",
                          "urgency"})


def parse_args(argv, prog):
    p = Parser(
        prog="flux jobs",
        description="List jobs: by default your pending and running jobs.",
        epilog="FORMAT is a named format (-o help lists them) or a format "
               "string such as '{id.f58} {name} {status}'.",
    )
    p.building(True)
    p.add_argument("-a", action="store_true", dest="all_states",
                   help="list jobs in every state, inactive included")
    p.add_argument("-A", action="store_true", dest="all_users",
                   help="list the jobs of every user")
    p.add_argument("-u", "--user", metavar="USER",
                   help="list the jobs of USER ('all' for everyone)")
    p.add_argument("-f", "--filter", action="append", metavar="STATE|RESULT",
                   help="list jobs in these states or with these results "
                        "(depend priority sched run cleanup inactive pending "
                        "running active completed failed canceled timeout)")
    p.add_argument("-c", "--count", type=int, default=1000, metavar="N",
                   help="list at most N jobs (default 1000; 0: no limit)")
    p.add_argument("--since", metavar="WHEN",
                   help="inactive jobs that ended after WHEN (implies -a), "
                        "e.g. -1h or 'yesterday'")
    p.add_argument("--name", metavar="NAME", help="jobs named NAME")
    p.add_argument("-q", "--queue", metavar="QUEUE", help="jobs of QUEUE")
    p.add_argument("-i", "--include", metavar="HOSTS|RANKS",
                   help="jobs that ran on these hosts or broker ranks")
    p.add_argument("-n", "--no-header", action="store_true",
                   help="do not print the header")
    p.add_argument("-o", "--format", default="default", metavar="FORMAT",
                   help="named format or format string (default: 'default')")
    p.add_argument("--sort", metavar="KEY,...",
                   help="sort by these fields (a leading - reverses)")
    p.add_argument("--json", action="store_true",
                   help="print the jobs as JSON")
    p.add_argument("--stats", action="store_true",
                   help="print a summary of job counts first")
    p.add_argument("--stats-only", action="store_true",
                   help="print only the summary; exit 0 if jobs are active")
    p.add_argument("--watch", action="store_true",
                   help="follow the listed jobs until they are inactive")
    p.add_argument("-R", "--recursive", action="store_true",
                   help="accepted for compatibility (not implemented)")
    p.add_argument("--color", nargs="?", const="always", default="auto",
                   metavar="WHEN", help="accepted for compatibility")
    p.add_argument("ids", nargs="*", metavar="ID", help="list only these jobs")
    p.building(False)
    return p.parse_args(argv)


def format_string(args):
    from flux.util import UtilConfig

    config = UtilConfig("flux-jobs", toolname="flux-jobs",
                        initial_dict={"formats": FORMATS}).load()
    fmt = config.get_format_string(args.format)
    if args.sort:
        fmt = f"sort:{args.sort} {fmt}"
    return fmt


def include_constraint(text):
    import re

    if re.fullmatch(r"\[?[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*\]?", text):
        return {"ranks": [text]}
    return {"hostlist": [text]}


def print_stats(h, queue):
    from flux.job.stats import JobStats

    stats = JobStats(h, queue=queue).update_sync()
    print(f"{stats.running} running, {stats.successful} completed, "
          f"{stats.failed} failed, {stats.pending} pending, "
          f"{stats.inactive_purged} inactive purged")
    return stats


def fetch(h, args):
    from flux.job import JobList

    filters = list(args.filter or [])
    since = 0.0
    if args.since:
        from flux.util import parse_datetime

        since = parse_datetime(args.since).timestamp()
        if not filters:
            filters = ["inactive"]
    if not filters:
        filters = ["pending", "running", "inactive"] if args.all_states \
            else ["pending", "running"]
    user = "all" if args.all_users else args.user
    constraint = include_constraint(args.include) if args.include else None
    joblist = JobList(h, filters=filters, ids=args.ids, user=user,
                      max_entries=args.count, since=since, name=args.name,
                      queue=args.queue, constraint=constraint)
    jobs = joblist.jobs()
    return jobs, joblist.errors


def main(argv, prog="flux-jobs", command="jobs"):
    args = parse_args(argv, prog)
    try:
        return run(args)
    except (ValueError, TypeError, KeyError) as exc:
        from fluxrm.cli.main import report_error

        text = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        report_error(PROG, exc, str(text))  # the traceback too when debugging
        return 1


def run(args):
    import flux

    fmt = None
    if not args.json and not args.stats_only:
        from flux.job import JobInfoFormat

        fmt = JobInfoFormat(format_string(args))
    h = flux.Flux()
    journal = open_journal(h) if args.watch else None
    if args.stats or args.stats_only:
        stats = print_stats(h, args.queue)
        if args.stats_only:
            return 0 if stats.active else 1
    jobs, errors = fetch(h, args)
    code = 0
    for err in errors:
        print(f"{PROG}: {err}", file=sys.stderr)
        code = 1
    if args.json:
        import json

        dicts = [job.to_dict() for job in jobs]
        if len(args.ids) == 1 and len(dicts) == 1:
            print(json.dumps(dicts[0], ensure_ascii=False))
        else:
            print(json.dumps({"jobs": dicts}, ensure_ascii=False))
        return code
    if args.watch:
        return max(code, watch(h, journal, fmt, jobs, args))
    if any(field.startswith("instance.") for field in fmt.fields):
        from flux.job.instance import prefetch

        prefetch(jobs)  # every running child instance asked at once
    fmt.print_items(jobs, no_header=args.no_header)
    return code


# --- --watch ------------------------------------------------------------------------------------

def open_journal(h):
    from flux.constants import FLUX_RPC_STREAMING

    f = h.rpc("job-manager.events-journal", {}, flags=FLUX_RPC_STREAMING)
    f.get()  # live from here on
    f.reset()
    return f


def watch(h, journal, fmt, jobs, args):
    """Print the jobs, then a line per state change until all are inactive."""
    from flux.constants import FLUX_JOB_STATE_INACTIVE
    from flux.job import JobInfo

    # fix the columns once, from the first listing
    line_fmt = fmt.filter(jobs, no_header=args.no_header)
    from flux.job import JobInfoFormat

    fmt = JobInfoFormat(line_fmt)
    if not args.no_header:
        print(fmt.header())
    for job in jobs:
        print(fmt.format(job))
    sys.stdout.flush()
    active = {int(job.id) for job in jobs
              if job.state_id != FLUX_JOB_STATE_INACTIVE}
    if not active:
        return 0
    shown = {int(job.id): job.state_id for job in jobs}

    def print_job(f, jobid):
        try:
            info = JobInfo(f.get()["job"])
        except OSError:
            return
        if shown.get(jobid) == info.state_id:
            return  # several events, one state change
        shown[jobid] = info.state_id
        print(fmt.format(info), flush=True)
        if info.state_id == FLUX_JOB_STATE_INACTIVE:
            active.discard(jobid)
            if not active:
                h.reactor_stop()

    def on_journal(f):
        try:
            rsp = f.get()
        except OSError as exc:
            f.stop()
            if exc.errno != errno.ENODATA:
                print(f"{PROG}: events journal: {exc.strerror}", file=sys.stderr)
            h.reactor_stop()
            return
        f.reset()
        for item in rsp.get("events", ()):
            jobid = item["id"]
            if jobid not in active:
                continue
            entry = item["entry"]
            name = entry["name"]
            fatal = name == "exception" and (entry.get("context") or {}).get(
                "severity", 0) == 0
            if name in STATE_EVENTS or fatal:
                # one fetch per event, answered in order
                fut = h.rpc("job-list.list-id", {"id": jobid, "attrs": ["all"]})
                fut.then(print_job, jobid)

    journal.then(on_journal)
    h.reactor_run()
    return 0
