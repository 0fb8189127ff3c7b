"""The workflow layer, mirroring O2's Data Processing Layer (knows nothing of physics).

Processors (:class:`DataProcessorSpec`) declare typed inputs and outputs addressed by
``origin/description/subspec``; :func:`build_topology` wires and checks them; runners execute
the topology inline (deterministic, one process) or with one process per processor and
payloads in shared memory. Tasks use O2's API: ``init``/``run``/``end_of_stream`` with
``pc.inputs.get(binding)`` and ``pc.outputs.make/snapshot``. Configuration groups are set with
``--configKeyValues``.

Modules, from the declarations to the runners:

* ``spec``, ``topology``, ``config``: what a workflow is (processors, routes, configuration);
* ``message``, ``context``, ``task``, ``metrics``: what a task sees and makes;
* ``runtime``: one processor instance (``ProcessorRuntime``), the ``RunSummary`` and the worker
  warm-up hooks; ``relayer``: routing (every part of an input that matches several outputs),
  completion and the completion policies (consume when all / when any), shared by the runners;
* ``runner_inline``; ``runner_mp`` (driver phases) with ``mp_flow`` (the driver's data flow),
  ``mp_book`` (per-timeslice notes, arrivals), ``mp_lanes`` (processes and pipes),
  ``mp_segments`` (shared-memory references), ``mp_worker`` (the worker process) and ``shm``
  (the shared-memory transport); ``online``: replay schedule and latency budget;
* ``executable``, ``workflows``: command lines and workflow files.
"""

from alice_dyn.framework.config import (
    ConfigError,
    ConfigStore,
    config_group,
    register_config_group,
)
from alice_dyn.framework.context import (
    EndOfStreamContext,
    InitContext,
    ProcessingContext,
)
from alice_dyn.framework.message import DataHeader, Message
from alice_dyn.framework.runner_inline import run_inline
from alice_dyn.framework.runner_mp import run_multiprocess
from alice_dyn.framework.runtime import ProcessorError, RunSummary
from alice_dyn.framework.spec import (
    ConfigParamSpec,
    DataProcessorSpec,
    DataType,
    InputSpec,
    Lifetime,
    OutputSpec,
    SpecError,
    parse_inputs,
)
from alice_dyn.framework.task import Task
from alice_dyn.framework.topology import Topology, build_topology

__all__ = [
    "ConfigError",
    "ConfigParamSpec",
    "ConfigStore",
    "DataHeader",
    "DataProcessorSpec",
    "DataType",
    "EndOfStreamContext",
    "InitContext",
    "InputSpec",
    "Lifetime",
    "Message",
    "OutputSpec",
    "ProcessingContext",
    "ProcessorError",
    "RunSummary",
    "SpecError",
    "Task",
    "Topology",
    "build_topology",
    "config_group",
    "parse_inputs",
    "register_config_group",
    "run_inline",
    "run_multiprocess",
]
