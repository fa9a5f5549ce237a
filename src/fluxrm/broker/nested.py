"""A nested instance tells its parent where to reach it.

A broker started inside a job of another instance has the attributes
``parent-uri`` (the parent's broker on this node) and ``jobid`` (its job
there, in decimal; see ``fluxrm.cli.nesting.nested_attributes``).  When such
a broker of rank 0 is ready, ``publish_uri(broker)`` sends the parent

    job-manager.memo {id: jobid, memo: {"uri": <this broker's local-uri>}}

so that ``flux uri JOBID``, ``flux proxy JOBID`` and ``flux jobs``'
``instance.*`` fields in the parent find this instance.  Upstream publishes
a remote (``ssh://host/path``) URI; we publish the ``local://`` one, which
reaches the instance from the node it runs on (where the parent's broker
for the job's first node runs too).

The parent is reached with a blocking ``flux.Flux`` handle in a short-lived
thread, so the broker's loop never waits for it; a failure is logged, and
the instance runs on without being reachable through its parent.
"""

import threading

LOG_ERR = 3
LOG_DEBUG = 7
PUBLISH_TIMEOUT = 30.0  # seconds for the parent to answer


def memo_target(broker):
    """``(parent_uri, jobid, uri)`` if this broker should publish its URI
    to a parent instance, else None."""
    if broker.rank != 0:
        return None
    parent = broker.attr("parent-uri")
    jobid = broker.attr("jobid")
    if not parent or not jobid:
        return None
    try:
        jobid = int(jobid)
    except (TypeError, ValueError):
        return None
    return parent, jobid, broker.attr("local-uri")


def send_memo(parent, jobid, uri, timeout=PUBLISH_TIMEOUT):
    """Post ``{"uri": uri}`` as a memo on job ``jobid`` of the instance at
    ``parent`` (blocking; raises OSError)."""
    import flux

    h = flux.Flux(parent)
    h.rpc("job-manager.memo", {"id": jobid, "memo": {"uri": uri}}).wait_for(
        timeout).get()


def publish_uri(broker):
    """Start publishing this instance's URI to its parent, if it has one."""
    target = memo_target(broker)
    if target is None:
        return None
    import asyncio

    loop = asyncio.get_running_loop()

    def log(level, text):
        try:
            loop.call_soon_threadsafe(broker.log, level, text)
        except RuntimeError:
            pass  # the broker has stopped meanwhile

    def publish():
        parent, jobid, uri = target
        try:
            send_memo(parent, jobid, uri)
        except OSError as exc:
            log(LOG_ERR, f"publishing the URI to the parent instance ({parent},"
                         f" job {jobid}): {exc.strerror or exc}")
        except Exception as exc:  # a thread's failure must be told, not lost
            log(LOG_ERR, f"publishing the URI to the parent instance: {exc!r}")
        else:
            log(LOG_DEBUG, f"URI published to job {jobid} of {parent}")

    thread = threading.Thread(target=publish, name="publish-uri", daemon=True)
    thread.start()
    return thread
