"""flux.resource: resource sets and the instance's resources (spec 21).

- ``ResourceSet`` (any version) and ``Rv1Set`` (R version 1, pure Python);
- ``resource_list(h)`` -> ``SchedResourceList`` (all, down, allocated, up,
  free), ``resource_status(h)`` -> ``ResourceStatus`` (node states);
- ``ResourceJournalConsumer``: the resource journal;
- ``ResourceCount``: RFC 14 counts;
- ``ResourcePool``/``Rv1Pool``: resources a scheduler allocates from,
  ``InsufficientResources`` and ``InfeasibleRequest``.
"""

from flux.resource.Rv1Set import Rv1Set  # noqa: F401
from flux.resource.ResourceSet import ResourceSet  # noqa: F401
from flux.resource.ResourceCount import ResourceCount  # noqa: F401
from flux.resource.list import resource_list, SchedResourceList  # noqa: F401
from flux.resource.status import resource_status, ResourceStatus  # noqa: F401
from flux.resource.journal import ResourceJournalConsumer  # noqa: F401
from flux.resource.Rv1Pool import (  # noqa: F401
    Rv1Pool, InsufficientResources, InfeasibleRequest,
)
from flux.resource.ResourcePool import ResourcePool  # noqa: F401
