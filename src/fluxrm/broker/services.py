"""The services of one broker, and their start order: the one list.

Each entry is ``"module:Class"``, a ``Service`` subclass whose request
topics are declared on its methods (``fluxrm.broker.service.request_handler``).
The broker imports and constructs them all, in this order, then awaits each
one's ``start()`` in this order, and at shutdown each one's ``stop()`` in the
reverse order.  Every service is constructed before any starts, so a
service may look another up in ``start()`` (``broker.router.services[name]``)
whatever their places; the order matters for what ``start()`` does:

- the builtins first: the broker's own small services (attributes, the log,
  events, client-registered services, ping), which need nothing;
- ``kvs`` opens the shared store (``content.sqlite``) that the job services
  use, and is stopped last of the modules (it checkpoints and closes it);
- ``resource`` discovers the cores and GPUs before ``sched`` builds its view
  of them;
- ``job-exec`` is started (its SIGCHLD handler) before the ``job-manager``
  replays the stored jobs in its ``start()``, which may hand it work;
- ``job-ingest``, ``job-info`` and ``job-list`` front the job-manager's
  jobs; ``job-list`` counts the stored inactive ones at start.

In an instance of several brokers, rank 0 runs them all; the other ranks
run only those in ``EVERY_RANK`` (a request for a topic no local service
has goes up the tree to rank 0).

A new service is a line here (and its module in ``fluxrm/modules/``).
"""

SERVICES = [
    # the broker's own (fluxrm/broker/builtins.py)
    "fluxrm.broker.builtins:BrokerService",    # broker.ping, broker.shutdown
    "fluxrm.broker.builtins:AttrService",      # attr.*
    "fluxrm.broker.builtins:ConfigService",    # config.get
    "fluxrm.broker.builtins:LogService",       # log.*
    "fluxrm.broker.builtins:ServiceRegistry",  # service.add, service.remove
    "fluxrm.broker.builtins:EventService",     # event.*
    "fluxrm.broker.builtins:OverlayService",   # overlay.status
    "fluxrm.broker.rexec:RexecService",        # rexec.* (flux exec)
    # the modules (fluxrm/modules/)
    "fluxrm.modules.kvs:KVSService",           # kvs.*, kvs-watch.*, content.*
    "fluxrm.modules.resource:ResourceService",  # resource.*
    "fluxrm.modules.sched:Sched",              # (the scheduler protocol, in process)
    "fluxrm.modules.job_exec:JobExec",         # runs the tasks
    "fluxrm.modules.job_manager:JobManager",   # job-manager.*
    "fluxrm.modules.job_ingest:JobIngest",     # job-ingest.submit
    "fluxrm.modules.job_info:JobInfo",         # job-info.*
    "fluxrm.modules.job_list:JobList",         # job-list.*
    "fluxrm.broker.modules:ModuleRegistry",    # module.* (flux module): stopped first
]


# the services every rank runs; the others run on rank 0 only
EVERY_RANK = {
    "fluxrm.broker.builtins:BrokerService",
    "fluxrm.broker.builtins:AttrService",
    "fluxrm.broker.builtins:ConfigService",
    "fluxrm.broker.builtins:LogService",
    "fluxrm.broker.builtins:ServiceRegistry",
    "fluxrm.broker.builtins:EventService",
    "fluxrm.broker.builtins:OverlayService",
    "fluxrm.broker.rexec:RexecService",
    "fluxrm.modules.resource:ResourceService",
    "fluxrm.modules.job_exec:JobExec",  # runs its rank's share of jobs
    "fluxrm.broker.modules:ModuleRegistry",
}


def services_for_rank(rank):
    """The services rank ``rank`` runs, in start order."""
    if rank == 0:
        return list(SERVICES)
    return [spec for spec in SERVICES if spec in EVERY_RANK]
