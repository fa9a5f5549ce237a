"""One RPC per job, sent together, with failures reported per job."""

import sys


def rpc_each(h, prog, jobids, topic, payload):
    """Send ``topic`` with ``payload(jobid)`` for every job, then collect.

    All requests go out before the first answer is read.  Each failure is
    one line on stderr (``<prog>: <id as given>: <error>``).  Returns 0, or 1
    if any request failed.
    """
    futures = [(j, h.rpc(topic, payload(j))) for j in jobids]
    code = 0
    for jobid, f in futures:
        try:
            f.get()
        except OSError as exc:
            print(f"{prog}: {jobid.orig}: {exc.strerror}", file=sys.stderr)
            code = 1
    return code
