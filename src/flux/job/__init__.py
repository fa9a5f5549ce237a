"""Flux job API: job ids, jobspecs, and (later) submit/wait/list.

Each line imports one module's public names; keep it that way.  Modules
that need heavy dependencies (yaml) import them lazily.
"""

from flux.job.JobID import JobID, id_encode, id_parse  # noqa: F401
from flux.job.Jobspec import Jobspec, JobspecV1, validate_jobspec  # noqa: F401
from flux.job.submit import *  # noqa: F401,F403
from flux.job.event import *  # noqa: F401,F403
from flux.job.kill import *  # noqa: F401,F403
from flux.job.wait import *  # noqa: F401,F403
from flux.job.output import *  # noqa: F401,F403
from flux.job.kvslookup import *  # noqa: F401,F403
from flux.job.timeleft import *  # noqa: F401,F403
from flux.job.info import JobInfo, JobInfoFormat, job_fields_to_attrs  # noqa: F401
from flux.job.list import (  # noqa: F401
    JobList, JobListIdsFuture, get_job, job_list, job_list_id, job_list_inactive,
)
from flux.job.stats import JobStats  # noqa: F401
from flux.job.batchconfig import BatchConfig  # noqa: F401
from flux.job.watcher import JobWatcher  # noqa: F401
from flux.job.executor import FluxExecutor, FluxExecutorFuture  # noqa: F401
