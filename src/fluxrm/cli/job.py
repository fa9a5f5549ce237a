"""``flux job SUBCOMMAND``: look at and control single jobs.

Subcommands (each with ``--help``):

- ``attach [-l] [-E] [-X] [-v] [-w EVENT] [--read-only] ID``: stream output,
  exit with the job's exit code (spec 8.3);
- ``submit [--urgency] [--flags] [FILE]``: submit a jobspec (JSON or YAML);
- ``status [-v] [-e CODE] ID...``: wait, exit with the largest exit code;
- ``wait [-a] [-v] [ID]``: wait for waitable jobs (spec 8.4 exit codes);
- ``kill [-s SIG] ID...``, ``killall [-f] [-s SIG] [-u USER]``;
- ``raise [-s SEV] [-t TYPE] ID... [--] [NOTE...]``, ``raiseall``;
- ``cancel ID... [--] [NOTE...]``, ``cancelall [-f] [-S STATES] [-u USER]``;
- ``urgency [-v] ID URGENCY`` (N, hold, default, expedite);
- ``memo [--volatile] ID KEY=VALUE...``: user data shown as ``{user.KEY}``;
- ``info [-o] [-b] ID KEY...``: jobspec, R, eventlog, J, guest logs;
- ``eventlog [-f text|json] [-T raw|iso|offset] [-H] [-L[WHEN]] [-F] [-p PATH] ID``;
- ``wait-event [-t SECS] [-v] [-q] [-m KEY=VAL] [-c N] [-p PATH] [-f] [-T] [-H]
  [-L[WHEN]] ID EVENT`` (lines formatted by ``flux.eventlog.EventLogFormatter``);
- ``id [--from=ENC] [--to=ENC] [ID...]``: convert job id encodings;
- ``last [SLICE]``: the most recently submitted job id(s);
- ``timeleft [-H] [ID]``; ``list``/``list-ids`` (job-list JSON); ``stats``.

Only the chosen subcommand's parser is built.  Errors print one line
``flux-job: ...`` and exit 1 (usage errors 2).
"""

import errno
import json
import math
import os
import signal
import sys
import time

from fluxrm.cli import taskmap
from fluxrm.cli.subcommands import Fail, run_subcommand

PROG = "flux-job"


def jobid_arg(text):
    from flux.job import JobID

    try:
        return JobID(text)
    except (ValueError, TypeError, OSError):
        import argparse

        raise argparse.ArgumentTypeError(f"invalid jobid '{text}'") from None


def parse_jobid(text):
    from flux.job import JobID

    try:
        return JobID(text)
    except (ValueError, TypeError, OSError):
        raise Fail(f"invalid jobid '{text}'") from None


def _handle():
    import flux

    return flux.Flux()


def _signum(text):
    if text.isdigit():
        num = int(text)
    else:
        name = text.upper()
        if not name.startswith("SIG"):
            name = "SIG" + name
        num = getattr(signal, name, None)
        if not isinstance(num, int) or name.startswith("SIG_"):
            num = 0
    if not 0 < int(num) < signal.NSIG:
        raise Fail(f"invalid signal '{text}'")
    return int(num)


def _ids_and_note(words):
    """``ID... [--] [NOTE...]``: leading words that parse as ids, then text."""
    from flux.job import JobID

    ids, rest = [], list(words)
    while rest:
        if rest[0] == "--":
            rest = rest[1:]
            break
        try:
            ids.append(JobID(rest[0]))
        except (ValueError, TypeError, OSError):
            break
        rest = rest[1:]
    return ids, " ".join(rest)


def _userid(text):
    if text is None:
        return os.getuid()
    if text == "all":
        from flux.constants import FLUX_USERID_UNKNOWN

        return FLUX_USERID_UNKNOWN
    if text.isdigit():
        return int(text)
    import pwd

    try:
        return pwd.getpwnam(text).pw_uid
    except KeyError:
        raise Fail(f"unknown user '{text}'") from None


def state_mask(text, default):
    """A comma-separated list of states (or pending/running/active) -> mask."""
    from flux.job.state import STATE_MASKS as names

    if not text:
        return default
    mask = 0
    for name in text.split(","):
        name = name.strip().lower()
        if name not in names:
            raise Fail(f"invalid state '{name}'")
        mask |= names[name]
    return mask


# --- eventlog formatting ----------------------------------------------------------------------

def event_formatter(args):
    """The ``flux.eventlog.EventLogFormatter`` of ``-f``, ``-T``, ``-H``, ``-L``."""
    from flux.eventlog import EventLogFormatter

    if args.format not in ("text", "json"):
        raise Fail(f"invalid format type '{args.format}'")
    if args.time_format not in ("raw", "iso", "offset", "human", "reltime"):
        raise Fail(f"invalid time-format type '{args.time_format}'")
    if args.color not in ("always", "never", "auto"):
        raise Fail(f"invalid value: --color={args.color}")
    fmt, timestamp = args.format, args.time_format
    if args.human:
        fmt, timestamp = "text", "human"
    return EventLogFormatter(fmt, timestamp, args.color)


def _formatter_options(p):
    p.add_argument("-f", "--format", default="text", metavar="text|json",
                   help="output format (default text)")
    p.add_argument("-T", "--time-format", default="raw",
                   metavar="raw|iso|offset",
                   help="timestamp format (default raw)")
    p.add_argument("-H", "--human", action="store_true",
                   help="human readable output (-f text -T human)")
    p.add_argument("-L", "--color", default="auto", metavar="WHEN",
                   help="colorize output: always, never, auto (default); "
                        "a bare -L means always")


def color_argv(argv):
    """Upstream's optional-argument ``-L[WHEN]``/``--color[=WHEN]`` as argparse
    takes it: a bare ``-L``/``--color`` is ``--color=always``."""
    out = []
    for i, arg in enumerate(argv):
        if arg == "--":
            return out + argv[i:]
        if arg in ("-L", "--color"):
            arg = "--color=always"
        elif arg.startswith("-L"):
            arg = "--color=" + arg[2:]
        out.append(arg)
    return out


EVENTLOG_PATHS = {"exec": "guest.exec.eventlog", "output": "guest.output",
                  "input": "guest.input", "eventlog": "eventlog",
                  "main": "eventlog"}


def eventlog_path(path):
    if path in EVENTLOG_PATHS:
        return EVENTLOG_PATHS[path]
    if path.startswith("guest.") or path == "eventlog":
        return path
    raise Fail(f"invalid eventlog path '{path}'")


def _lookup(h, jobid, keys, flags=0):
    try:
        return h.rpc("job-info.lookup",
                     {"id": int(jobid), "keys": keys, "flags": flags}).get()
    except FileNotFoundError as exc:
        raise Fail(f"{jobid.orig if hasattr(jobid, 'orig') else jobid}: "
                   f"{exc.strerror or 'not found'}") from None


def _watch(h, jobid, path):
    """Yield the events of a job eventlog until it ends."""
    from flux.constants import FLUX_RPC_STREAMING

    f = h.rpc("job-info.eventlog-watch",
              {"id": int(jobid), "path": path, "flags": 0},
              flags=FLUX_RPC_STREAMING)
    while True:
        try:
            rsp = f.get()
        except OSError as exc:
            if exc.errno == errno.ENODATA:
                return
            if exc.errno == errno.ENOENT:
                raise Fail(f"{jobid.orig}: {exc.strerror or 'not found'}") from None
            raise
        f.reset()
        yield json.loads(rsp["event"])


# --- subcommands -----------------------------------------------------------------------------

def setup_attach(p):
    p.add_argument("-l", "--label-io", action="store_true",
                   help="prefix output lines with the task rank")
    p.add_argument("-u", "--unbuffered", action="store_true",
                   help="accepted for compatibility (output is not buffered)")
    p.add_argument("-E", "--show-events", action="store_true",
                   help="show the job's events on stderr")
    p.add_argument("-X", "--show-exec", action="store_true",
                   help="show the exec events on stderr")
    p.add_argument("-w", "--wait-event", metavar="EVENT", default="finish",
                   help="return at EVENT (default finish; exec.NAME for exec events)")
    p.add_argument("-i", "--stdin-ranks", metavar="RANKS",
                   help="accepted for compatibility (stdin is not forwarded)")
    p.add_argument("--read-only", action="store_true",
                   help="do not forward signals to the job")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="print more (redirections, the job id)")
    p.add_argument("jobid", type=jobid_arg, help="the job")


def run_attach(args):
    from fluxrm.cli.attach import Attach

    h = _handle()
    try:
        h.rpc("job-info.lookup", {"id": int(args.jobid), "keys": [],
                                  "flags": 0}).get()
    except FileNotFoundError:
        raise Fail(f"Failed to attach to {args.jobid.orig}: No such job") from None
    if args.verbose:
        print(f"jobid: {args.jobid.f58}", file=sys.stderr)
    return Attach(h, args.jobid, prog=PROG, label=args.label_io,
                  show_events=args.show_events, show_exec=args.show_exec,
                  wait_event=args.wait_event, read_only=args.read_only,
                  verbose=args.verbose).run()


def setup_submit(p):
    p.add_argument("--urgency", default="16", metavar="N",
                   help="urgency 0-31, hold, default or expedite")
    p.add_argument("-f", "--flags", action="append", metavar="FLAGS",
                   help="submit flags: debug, waitable, novalidate")
    p.add_argument("file", nargs="?", metavar="FILE",
                   help="jobspec file, JSON or YAML (default: stdin)")


def run_submit(args):
    from flux.job import submit_async

    from fluxrm.cli.submitopts import URGENCY_NAMES, _flag_list, CLIError

    try:
        urgency = URGENCY_NAMES.get(args.urgency)
        if urgency is None:
            urgency = int(args.urgency)
        flags = _flag_list(args)
    except ValueError:
        raise Fail(f"invalid urgency '{args.urgency}'") from None
    except CLIError as exc:
        raise Fail(str(exc)) from None
    if args.file and args.file != "-":
        with open(args.file, encoding="utf-8") as fp:
            text = fp.read()
    else:
        text = sys.stdin.read()
    if not text.lstrip().startswith("{"):
        import yaml

        try:
            text = json.dumps(yaml.safe_load(text))
        except yaml.YAMLError as exc:
            raise Fail(f"invalid jobspec: {exc}") from None
    h = _handle()
    jobid = submit_async(h, text, urgency=urgency,
                         waitable="waitable" in flags, debug="debug" in flags,
                         novalidate="novalidate" in flags).get_id()
    print(jobid.f58)
    return 0


def setup_status(p):
    p.add_argument("-v", "--verbose", action="store_true",
                   help="print each job's status")
    p.add_argument("-e", "--exception-exit-code", type=int, default=1,
                   metavar="CODE",
                   help="exit code for a job that failed without one (default 1)")
    p.add_argument("-j", "--json", action="store_true",
                   help="print each job's result as JSON")
    p.add_argument("jobids", nargs="+", type=jobid_arg, metavar="ID")


def run_status(args):
    from flux.job import result_async

    h = _handle()
    futures = [(jobid, result_async(h, jobid)) for jobid in args.jobids]
    code = 0
    for jobid, f in futures:
        try:
            info = f.get_info()
        except OSError as exc:
            print(f"{PROG}: {jobid.orig}: {exc.strerror}", file=sys.stderr)
            code = max(code, 1)
            continue
        if args.json:
            print(json.dumps(info.to_dict(filtered=False), default=str))
        rc = info.returncode
        exc = info.exception
        if info.waitstatus == "" or (rc == -128):
            rc = args.exception_exit_code
            msg = f"exception: type={exc.type} note={exc.note}".rstrip()
        elif rc < 0:
            msg = f"killed by signal {-rc}"
            rc = 128 - rc
        else:
            msg = f"exited with exit code {rc}"
        if args.verbose:
            print(f"{jobid.orig}: {msg}", file=sys.stderr)
        code = max(code, rc)
    return code


def setup_wait(p):
    p.add_argument("-a", "--all", action="store_true",
                   help="wait for all waitable jobs; exit 1 if any failed")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="with --all, print each job's result")
    p.add_argument("jobid", nargs="?", type=jobid_arg, metavar="ID",
                   help="the job (default: any waitable job)")


def run_wait(args):
    from flux.constants import FLUX_JOBID_ANY

    h = _handle()
    if args.all:
        if args.jobid is not None:
            raise Fail("--all cannot be used with a job id", 2)
        failed = False
        from flux.job import id_encode

        while True:
            try:
                rsp = h.rpc("job-manager.wait", {"id": FLUX_JOBID_ANY}).get()
            except ChildProcessError:
                break
            f58 = id_encode(rsp["id"], "f58")
            if not rsp["success"]:
                failed = True
                print(f"{f58}: {rsp.get('errstr', '')}", file=sys.stderr)
            elif args.verbose:
                print(f"{f58}: success", file=sys.stderr)
        return 1 if failed else 0
    jobid = FLUX_JOBID_ANY if args.jobid is None else int(args.jobid)
    try:
        rsp = h.rpc("job-manager.wait", {"id": jobid}).get()
    except OSError as exc:
        raise Fail(exc.strerror or str(exc), 2) from None
    from flux.job import id_encode

    f58 = id_encode(rsp["id"], "f58")
    if args.jobid is None:
        print(f58)
    if not rsp["success"]:
        print(f"{f58}: {rsp.get('errstr', '')}", file=sys.stderr)
        return 1
    return 0


def setup_kill(p):
    p.add_argument("-s", "--signal", default="SIGTERM", metavar="SIG",
                   help="signal name or number (default SIGTERM)")
    p.add_argument("jobids", nargs="+", type=jobid_arg, metavar="ID")


def run_kill(args):
    from fluxrm.cli.jobrpc import rpc_each

    signum = _signum(args.signal)
    return rpc_each(_handle(), PROG, args.jobids, "job-manager.kill",
                    lambda j: {"id": int(j), "signum": signum})


def _list_ids(h, userid, states):
    rsp = h.rpc("job-list.list", {"max_entries": 0, "attrs": ["state"],
                                  "constraint": {"and": [{"userid": [userid]},
                                                         {"states": [states]}]}}
                ).get()
    return [job["id"] for job in rsp.get("jobs", [])]


def setup_killall(p):
    p.add_argument("-f", "--force", action="store_true",
                   help="really send the signal (default: just count)")
    p.add_argument("-s", "--signal", default="SIGTERM", metavar="SIG",
                   help="signal name or number (default SIGTERM)")
    p.add_argument("-u", "--user", metavar="USER",
                   help="jobs of USER ('all' for everyone; default: you)")


def run_killall(args):
    import flux.constants as C

    signum = _signum(args.signal)
    h = _handle()
    ids = _list_ids(h, _userid(args.user), C.FLUX_JOB_STATE_RUNNING)
    if not args.force:
        print(f"{PROG}: Command matched {len(ids)} jobs (-f to confirm)",
              file=sys.stderr)
        return 0
    futures = [h.rpc("job-manager.kill", {"id": i, "signum": signum}) for i in ids]
    errors = 0
    for f in futures:
        try:
            f.get()
        except OSError:
            errors += 1
    print(f"{PROG}: Killed {len(ids) - errors} jobs"
          + (f" ({errors} errors)" if errors else ""), file=sys.stderr)
    return 1 if errors else 0


def setup_raise(p):
    p.add_argument("-s", "--severity", type=int, default=0, metavar="N",
                   help="severity 0-7 (0, the default, is fatal)")
    p.add_argument("-t", "--type", default="cancel", metavar="TYPE",
                   help="exception type (default cancel)")
    p.add_argument("words", nargs="+", metavar="ID... [--] [NOTE...]")


def _raise_each(ids, etype, severity, note):
    if not ids:
        raise Fail("at least one job id is required", 2)
    from fluxrm.cli.jobrpc import rpc_each

    return rpc_each(_handle(), PROG, ids, "job-manager.raise",
                    lambda j: {"id": int(j), "type": etype, "severity": severity,
                               "note": note})


def run_raise(args):
    ids, note = _ids_and_note(args.words)
    return _raise_each(ids, args.type, args.severity, note)


def setup_cancel(p):
    p.add_argument("words", nargs="+", metavar="ID... [--] [NOTE...]")


def run_cancel(args):
    ids, note = _ids_and_note(args.words)
    return _raise_each(ids, "cancel", 0, note)


def setup_raiseall(p, cancel=False):
    if not cancel:
        p.add_argument("-s", "--severity", type=int, default=0, metavar="N",
                       help="severity 0-7 (default 0)")
        p.add_argument("-t", "--type", default="cancel", metavar="TYPE",
                       help="exception type (default cancel)")
    p.add_argument("-f", "--force", action="store_true",
                   help="really raise (default: just count)")
    p.add_argument("-S", "--states", metavar="STATES",
                   help="states to match (default: active, "
                        "e.g. pending,running)")
    p.add_argument("-u", "--user", metavar="USER",
                   help="jobs of USER ('all' for everyone; default: you)")
    p.add_argument("note", nargs="*", metavar="NOTE")


def _raiseall(args, etype, severity, verb):
    import flux.constants as C

    states = state_mask(args.states, C.FLUX_JOB_STATE_ACTIVE)
    h = _handle()
    rsp = h.rpc("job-manager.raiseall", {
        "dry_run": not args.force, "userid": _userid(args.user),
        "states": states, "severity": severity, "type": etype,
        "note": " ".join(args.note)}).get()
    count, errors = rsp.get("count", 0), rsp.get("errors", 0)
    if not args.force:
        print(f"{PROG}: Command matched {count} jobs (-f to confirm)",
              file=sys.stderr)
    else:
        print(f"{PROG}: {verb} {count} jobs"
              + (f" ({errors} errors)" if errors else ""), file=sys.stderr)
    return 1 if errors else 0


def run_raiseall(args):
    return _raiseall(args, args.type, args.severity, "Raised exception on")


def run_cancelall(args):
    return _raiseall(args, "cancel", 0, "Canceled")


def setup_urgency(p):
    p.add_argument("-v", "--verbose", action="store_true",
                   help="print the old urgency")
    p.add_argument("jobid", type=jobid_arg, metavar="ID")
    p.add_argument("urgency", metavar="URGENCY",
                   help="0-31, hold, default or expedite")


def run_urgency(args):
    from fluxrm.cli.submitopts import URGENCY_NAMES

    text = args.urgency
    if text in URGENCY_NAMES:
        urgency = URGENCY_NAMES[text]
    else:
        try:
            urgency = int(text)
        except ValueError:
            raise Fail(f"invalid urgency '{text}'", 2) from None
    h = _handle()
    try:
        rsp = h.rpc("job-manager.urgency",
                    {"id": int(args.jobid), "urgency": urgency}).get()
    except OSError as exc:
        raise Fail(f"{args.jobid.orig}: {exc.strerror}") from None
    if args.verbose:
        old = (rsp or {}).get("old_urgency")
        names = {v: k for k, v in URGENCY_NAMES.items() if k != "default"}
        old_text = names.get(old, old)
        print(f"{args.jobid.orig}: urgency changed from {old_text} to {text}",
              file=sys.stderr)
    return 0


def setup_memo(p):
    p.add_argument("--volatile", action="store_true",
                   help="do not keep the memo in the job's stored eventlog")
    p.add_argument("jobid", type=jobid_arg, metavar="ID")
    p.add_argument("memos", nargs="+", metavar="KEY=VALUE",
                   help="VALUE is JSON if it parses, else a string; '-' reads "
                        "it from stdin; null removes KEY; a dotted KEY nests")


def memo_object(words, stdin=None):
    """The memo object of ``KEY=VALUE`` words (see ``setup_memo``)."""
    import json

    memo = {}
    for word in words:
        key, sep, text = word.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise Fail(f"memo: expected KEY=VALUE, got '{word}'", 2)
        if text == "-":
            text = (stdin or sys.stdin).read()
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        node = memo
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return memo


def run_memo(args):
    memo = memo_object(args.memos)
    h = _handle()
    try:
        h.rpc("job-manager.memo", {"id": int(args.jobid), "memo": memo,
                                   "volatile": args.volatile}).get()
    except OSError as exc:
        raise Fail(f"{args.jobid.orig}: {exc.strerror}") from None
    return 0


INFO_KEYS = ("jobspec", "R", "eventlog", "J", "guest.exec.eventlog",
             "guest.output", "guest.input")


def setup_info(p):
    p.add_argument("-o", "--original", action="store_true",
                   help="the jobspec as submitted (from J)")
    p.add_argument("-b", "--base", action="store_true",
                   help="jobspec/R as stored, before updates")
    p.add_argument("jobid", type=jobid_arg, metavar="ID")
    p.add_argument("keys", nargs="+", metavar="KEY",
                   help="jobspec, R, eventlog, J, guest.exec.eventlog, "
                        "guest.output")


def run_info(args):
    for key in args.keys:
        if key not in INFO_KEYS:
            raise Fail(f"invalid key '{key}' (use {', '.join(INFO_KEYS)})")
    h = _handle()
    keys = list(args.keys)
    lookup = ["J" if (k == "jobspec" and args.original) else k for k in keys]
    from flux.constants import FLUX_JOB_LOOKUP_CURRENT

    rsp = _lookup(h, args.jobid, sorted(set(lookup)),
                  0 if args.base else FLUX_JOB_LOOKUP_CURRENT)
    for key, lkey in zip(keys, lookup):
        value = rsp.get(lkey)
        if key == "jobspec" and args.original:
            from flux.job.submit import unwrap_none

            try:
                value = unwrap_none(value).decode("utf-8")
            except ValueError:
                pass  # a bare jobspec was submitted
            print(value if args.base else json.dumps(json.loads(value),
                                                     ensure_ascii=False))
        elif key in ("jobspec", "R") and not args.base:
            print(json.dumps(json.loads(value), ensure_ascii=False))
        else:
            sys.stdout.write(value if value.endswith("\n") or not value
                             else value + "\n")
    return 0


def setup_eventlog(p):
    _formatter_options(p)
    p.add_argument("-F", "--follow", action="store_true",
                   help="wait for new events until the log ends")
    p.add_argument("-p", "--path", default="eventlog", metavar="PATH",
                   help="eventlog: eventlog (default), exec, output, input")
    p.add_argument("jobid", type=jobid_arg, metavar="ID")


def run_eventlog(args):
    fmt = event_formatter(args)
    path = eventlog_path(args.path)
    h = _handle()
    if args.follow:
        events = _watch(h, args.jobid, path)
    else:
        text = _lookup(h, args.jobid, [path])[path]
        events = (json.loads(line) for line in text.splitlines() if line.strip())
    for event in events:
        print(fmt.format(event), flush=args.follow)
    return 0


def setup_wait_event(p):
    p.add_argument("-t", "--timeout", type=float, metavar="SECS",
                   help="give up after SECS seconds")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="print the events before EVENT too")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print nothing")
    p.add_argument("-m", "--match-context", action="append", metavar="KEY=VAL",
                   help="the event's context must have KEY=VAL")
    p.add_argument("-c", "--count", type=int, default=1, metavar="N",
                   help="wait for the Nth matching event")
    p.add_argument("-p", "--path", default="eventlog", metavar="PATH",
                   help="eventlog: eventlog (default), exec, output, input")
    _formatter_options(p)
    p.add_argument("jobid", type=jobid_arg, metavar="ID")
    p.add_argument("event", metavar="EVENT")


def _context_matches(event, matches):
    ctx = event.get("context") or {}
    for item in matches:
        key, _, want = item.partition("=")
        if key not in ctx:
            return False
        value = ctx[key]
        text = value if isinstance(value, str) else json.dumps(value)
        if text != want:
            return False
    return True


def run_wait_event(args):
    from flux.constants import FLUX_RPC_STREAMING

    fmt = event_formatter(args)
    path = eventlog_path(args.path)
    h = _handle()
    f = h.rpc("job-info.eventlog-watch",
              {"id": int(args.jobid), "path": path, "flags": 0},
              flags=FLUX_RPC_STREAMING)
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    seen = 0
    while True:
        remaining = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if deadline is not None:
            try:
                ready = f.wait_for(remaining)
            except TimeoutError:
                ready = False
            if not ready:
                raise Fail(f"wait-event timeout on event '{args.event}'")
        try:
            rsp = f.get()
        except OSError as exc:
            if exc.errno == errno.ENODATA:
                raise Fail(f"eventlog ended before event='{args.event}'") from None
            if exc.errno == errno.ENOENT:
                raise Fail(f"{args.jobid.orig}: {exc.strerror or 'not found'}") from None
            raise
        f.reset()
        event = json.loads(rsp["event"])
        if event["name"] == args.event and _context_matches(
                event, args.match_context or ()):
            seen += 1
            if seen >= args.count:
                if not args.quiet:
                    print(fmt.format(event))
                return 0
        if args.verbose and not args.quiet:
            print(fmt.format(event), flush=True)


ENCODINGS = ("dec", "hex", "dothex", "kvs", "words", "f58", "f58plain", "emoji")


def setup_id(p):
    p.add_argument("-f", "--from", dest="from_", default="any",
                   metavar="ENC", help="input encoding (default any): "
                   + ", ".join(ENCODINGS))
    p.add_argument("-t", "--to", default="dec", metavar="ENC",
                   help="output encoding (default dec): " + ", ".join(ENCODINGS))
    p.add_argument("ids", nargs="*", metavar="ID",
                   help="job ids (default: read from stdin)")


def run_id(args):
    from flux.job import JobID

    if args.to not in ENCODINGS:
        raise Fail(f"invalid encoding '{args.to}'", 2)
    if args.from_ not in ENCODINGS + ("any",):
        raise Fail(f"invalid encoding '{args.from_}'", 2)
    words = args.ids or [line.strip() for line in sys.stdin if line.strip()]
    code = 0
    for word in words:
        try:
            jobid = JobID(word)
            if args.from_ != "any":
                if args.from_ in ("f58", "f58plain"):
                    ok = word.lstrip()[:1] in ("f", "\u0192")
                elif args.from_ == "dec":
                    ok = word.strip().isdigit()
                elif args.from_ == "hex":
                    ok = word.strip().startswith("0x")
                elif args.from_ == "kvs":
                    ok = word.strip().startswith("job.")
                else:
                    ok = jobid.encode(args.from_) == word.strip()
                if not ok:
                    raise ValueError(word)
        except (ValueError, TypeError, OSError):
            print(f"{PROG}: {word}: invalid jobid", file=sys.stderr)
            code = 1
            continue
        print(jobid.encode(args.to))
    return code


def setup_last(p):
    p.add_argument("slice", nargs="?", default="[:1]", metavar="SLICE",
                   help="which ids, most recent first, as a Python slice "
                        "(e.g. [:5]); a bare N means the Nth most recent "
                        "(default: the last one)")


def run_last(args):
    from flux.job import id_encode

    text = args.slice.strip()
    inner = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        if ":" in inner:
            parts = [int(p) if p.strip() else None for p in inner.split(":")]
            if len(parts) > 3:
                raise ValueError
            sel = slice(*parts)
        else:
            n = int(inner)
            sel = slice(n, n + 1 if n != -1 else None)
    except ValueError:
        raise Fail(f"invalid slice '{args.slice}'", 2) from None
    h = _handle()
    rsp = h.rpc("job-list.list", {"max_entries": 0, "attrs": [],
                                  "constraint": {"userid": [os.getuid()]}}).get()
    ids = sorted((job["id"] for job in rsp.get("jobs", [])), reverse=True)
    if not ids:
        raise Fail("job history is empty")
    chosen = ids[sel]
    if not chosen:
        raise Fail(f"no jobs in slice '{args.slice}'")
    for jobid in chosen:
        print(id_encode(jobid, "f58"))
    return 0


def setup_timeleft(p):
    p.add_argument("-H", "--human", action="store_true",
                   help="print a Flux standard duration")
    p.add_argument("jobid", nargs="?", type=jobid_arg, metavar="ID",
                   help="the job (default: $FLUX_JOB_ID or this instance)")


def run_timeleft(args):
    h = _handle()
    if args.jobid is None:
        from flux.job import timeleft

        left = timeleft(h)
    else:
        from flux.constants import FLUX_JOB_LOOKUP_CURRENT, FLUX_JOB_LOOKUP_JSON_DECODE

        rsp = _lookup(h, args.jobid, ["R"],
                      FLUX_JOB_LOOKUP_JSON_DECODE | FLUX_JOB_LOOKUP_CURRENT)
        R = rsp.get("R") or {}
        if isinstance(R, str):
            R = json.loads(R)
        expiration = R.get("execution", {}).get("expiration", 0) or 0
        left = math.inf if expiration <= 0 else max(0.0, expiration - time.time())
    if args.human:
        from flux.util import fsd

        print(fsd(left))
    elif math.isinf(left):
        print("infinity")
    else:
        print(int(left))
    return 0


def setup_list(p):
    p.add_argument("-s", "--states", metavar="STATES",
                   help="states to list (default: all)")
    p.add_argument("-c", "--count", type=int, default=0, metavar="N",
                   help="list at most N jobs (default: all)")
    p.add_argument("-u", "--user", metavar="USER",
                   help="jobs of USER ('all' for everyone; default: you)")
    p.add_argument("-A", "--all-users", action="store_true",
                   help="jobs of every user")


def run_list(args):
    import flux.constants as C

    states = state_mask(args.states, C.FLUX_JOB_STATE_ACTIVE
                        | C.FLUX_JOB_STATE_INACTIVE)
    user = "all" if args.all_users else args.user
    h = _handle()
    rsp = h.rpc("job-list.list", {"max_entries": args.count, "attrs": ["all"],
                                  "constraint": {"and": [
                                      {"userid": [_userid(user)]},
                                      {"states": [states]}]}}).get()
    for job in rsp.get("jobs", []):
        print(json.dumps(job, ensure_ascii=False))
    return 0


def setup_list_ids(p):
    p.add_argument("jobids", nargs="+", type=jobid_arg, metavar="ID")


def run_list_ids(args):
    h = _handle()
    futures = [(j, h.rpc("job-list.list-id", {"id": int(j), "attrs": ["all"]}))
               for j in args.jobids]
    code = 0
    for jobid, f in futures:
        try:
            print(json.dumps(f.get()["job"], ensure_ascii=False))
        except OSError as exc:
            print(f"{PROG}: {jobid.orig}: {exc.strerror}", file=sys.stderr)
            code = 1
    return code


def setup_purge(p):
    p.add_argument("--age-limit", metavar="FSD",
                   help="purge inactive jobs that ended more than FSD ago")
    p.add_argument("--num-limit", type=int, metavar="COUNT",
                   help="purge the oldest inactive jobs until COUNT remain")
    p.add_argument("--batch", type=int, default=50, metavar="COUNT",
                   help="jobs purged per request (default 50, at most 1000)")
    p.add_argument("-f", "--force", action="store_true",
                   help="purge (without it: say how many would be purged)")
    p.add_argument("jobids", nargs="*", type=jobid_arg, metavar="ID",
                   help="purge these inactive jobs")


def run_purge(args):
    from flux.util import parse_fsd

    limits = args.age_limit is not None or args.num_limit is not None
    if args.jobids and limits:
        raise Fail("job ids cannot be given with --age-limit or --num-limit", 2)
    if not args.jobids and not limits:
        raise Fail("give --age-limit, --num-limit or job ids", 2)
    h = _handle()
    if args.jobids:
        try:
            rsp = h.rpc("job-manager.purge-id", {"jobs": [int(j) for j in args.jobids],
                                                 "force": args.force}).get()
        except OSError as exc:
            raise Fail(f"purge: {exc.strerror}") from None
        orig = {int(j): j.orig for j in args.jobids}
        for jobid, text in rsp["errors"]:
            print(f"{PROG}: {orig.get(jobid, jobid)}: {text}", file=sys.stderr)
        if args.force:
            print(f"purged {rsp['count']} inactive jobs")
        else:
            print(f"use --force to purge {rsp['count']} inactive jobs")
        return 1 if rsp["errors"] else 0
    req = {"batch": args.batch, "force": args.force}
    if args.age_limit is not None:
        try:
            req["age_limit"] = parse_fsd(args.age_limit)
        except ValueError:
            raise Fail(f"invalid --age-limit '{args.age_limit}'", 2) from None
    if args.num_limit is not None:
        if args.num_limit < 0:
            raise Fail("--num-limit must be 0 or more", 2)
        req["num_limit"] = args.num_limit
    total = 0
    while True:
        try:
            rsp = h.rpc("job-manager.purge", req).get()
        except OSError as exc:
            raise Fail(f"purge: {exc.strerror}") from None
        total += rsp["count"]
        if not args.force:
            print(f"use --force to purge {total} inactive jobs")
            return 0
        if rsp["count"] < args.batch:
            break
    print(f"purged {total} inactive jobs, {rsp['remaining']} remaining")
    return 0


def setup_stats(p):
    pass


def run_stats(args):
    h = _handle()
    print(json.dumps(h.rpc("job-list.job-stats", {}).get()))
    return 0


SUBCOMMANDS = {
    "attach": (setup_attach, run_attach, "interactively attach to a job"),
    "submit": (setup_submit, run_submit, "submit a jobspec file"),
    "status": (setup_status, run_status,
               "wait for jobs, exit with the largest exit code"),
    "wait": (setup_wait, run_wait, "wait for waitable jobs"),
    "kill": (setup_kill, run_kill, "send a signal to running jobs"),
    "killall": (setup_killall, run_killall, "send a signal to all running jobs"),
    "raise": (setup_raise, run_raise, "raise an exception on jobs"),
    "raiseall": (setup_raiseall, run_raiseall,
                 "raise an exception on all matching jobs"),
    "cancel": (setup_cancel, run_cancel, "cancel jobs"),
    "cancelall": (lambda p: setup_raiseall(p, cancel=True), run_cancelall,
                  "cancel all matching jobs"),
    "urgency": (setup_urgency, run_urgency, "change a job's urgency"),
    "memo": (setup_memo, run_memo, "attach user data (a memo) to a job"),
    "info": (setup_info, run_info, "print a job's jobspec, R or eventlogs"),
    "eventlog": (setup_eventlog, run_eventlog, "print a job's eventlog"),
    "wait-event": (setup_wait_event, run_wait_event,
                   "wait for an event in a job's eventlog"),
    "id": (setup_id, run_id, "convert job ids between encodings"),
    "last": (setup_last, run_last, "print the most recently submitted job id(s)"),
    "timeleft": (setup_timeleft, run_timeleft,
                 "print the time left before a job's time limit"),
    "list": (setup_list, run_list, "list jobs as JSON"),
    "list-ids": (setup_list_ids, run_list_ids, "list the given jobs as JSON"),
    "stats": (setup_stats, run_stats, "print job statistics as JSON"),
    "taskmap": (taskmap.setup, taskmap.run,
                "print a job's task map, or which node runs a task"),
    "purge": (setup_purge, run_purge, "remove inactive jobs from the instance"),
}


def main(argv, prog="flux-job", command="job"):
    if argv and argv[0] in ("eventlog", "wait-event"):
        argv = argv[:1] + color_argv(list(argv[1:]))
    return run_subcommand(argv, "job", PROG, SUBCOMMANDS, 11,
                          synopsis="[--help] SUBCOMMAND [OPTIONS...]")
