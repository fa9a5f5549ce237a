"""``flux update [-n] JOBID KEY=VALUE...``: change a pending job's jobspec,
or a running job's duration (the instance owner only: the job's time
limit moves to its start plus the new duration).

Keys: ``duration`` (a Flux standard duration; ``+FSD`` / ``-FSD`` add to
or take from the job's current duration, which must then be limited),
``queue``, ``name`` (the job name, ``attributes.system.job.name``), or a
whole dotted key (``attributes.system.duration``); a key not starting
with ``attributes.`` is taken as ``attributes.system.KEY``.  Other values
are read as JSON when they parse, else taken as strings.  The updates go
in one ``job-manager.update`` request (one ``jobspec-update`` event);
``-n/--dry-run`` prints the jobspec the update would give instead.

Errors (the job-manager's: "requested duration exceeds policy limit of
1h", "'x' is not a valid queue", "job is not pending", "new expiration
would be in the past ..."...) are one line on
stderr, exit 1; usage errors exit 2.
"""

import json
import sys

from fluxrm.cli.argparser import Parser

PROG = "flux-update"
ALIASES = {"duration": "attributes.system.duration",
           "queue": "attributes.system.queue",
           "name": "attributes.system.job.name"}


class UsageError(Exception):
    pass


def parse_args(argv):
    parser = Parser(prog=PROG, description="Update a pending job's jobspec"
                    " or a running job's duration.")
    parser.add_argument("-n", "--dry-run", action="store_true",
                        help="print the updated jobspec; change nothing")
    parser.add_argument("jobid", metavar="JOBID")
    parser.add_argument("updates", nargs="+", metavar="KEY=VALUE")
    return parser.parse_args(argv)


def _current_duration(h, jobid):
    import flux.job

    job = flux.job.job_list_id(h, jobid, attrs=["duration"]).get_jobinfo()
    return float(getattr(job, "duration", 0.0) or 0.0)


def _duration(h, jobid, text):
    from flux.util import parse_fsd

    sign = text[:1] if text[:1] in "+-" else ""
    try:
        seconds = parse_fsd(text[1:] if sign else text)
    except ValueError:
        raise UsageError(f"duration: invalid Flux standard duration '{text}'") from None
    if not sign:
        return seconds
    current = _current_duration(h, jobid)
    if current == 0:
        raise UsageError("duration: cannot update an unlimited duration"
                         f" by '{text}'")
    new = current + seconds if sign == "+" else current - seconds
    if new <= 0:
        raise UsageError(f"duration: '{text}' leaves a duration <= 0")
    return new


def parse_updates(h, jobid, words):
    updates = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise UsageError(f"'{word}': expected KEY=VALUE")
        key = ALIASES.get(key, key)
        if not key.startswith("attributes."):
            key = "attributes.system." + key
        if key == ALIASES["duration"]:
            updates[key] = _duration(h, jobid, value)
        elif key in (ALIASES["queue"], ALIASES["name"]):
            updates[key] = value
        else:
            try:
                updates[key] = json.loads(value)
            except ValueError:
                updates[key] = value
    return updates


def main(argv, prog=PROG, command="update"):
    args = parse_args(argv)
    import flux
    from fluxrm.cli.job import parse_jobid

    jobid = parse_jobid(args.jobid)
    h = flux.Flux()
    try:
        updates = parse_updates(h, jobid, args.updates)
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    resp = h.rpc("job-manager.update", {"id": int(jobid), "updates": updates,
                                        "dry_run": args.dry_run}).get()
    if args.dry_run:
        print(json.dumps(resp.get("jobspec")))
    return 0
