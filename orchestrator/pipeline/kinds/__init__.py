"""The built-in stage kinds, registered when this package is imported.

They are imported, so registered, in the order a pipeline runs them: ingest (one stage per source), blend, features,
split, and, when the file declares a model, train, evaluate, export, register and score. Registration order is the
order the graph lists independent stages in, and run records list stages in graph order: keep this order.
"""

# isort: off
from orchestrator.pipeline.kinds import ingest  # noqa: F401
from orchestrator.pipeline.kinds import blend  # noqa: F401
from orchestrator.pipeline.kinds import features  # noqa: F401
from orchestrator.pipeline.kinds import split  # noqa: F401
from orchestrator.pipeline.kinds import train  # noqa: F401
from orchestrator.pipeline.kinds import evaluate  # noqa: F401
from orchestrator.pipeline.kinds import export  # noqa: F401
from orchestrator.pipeline.kinds import register  # noqa: F401
from orchestrator.pipeline.kinds import score  # noqa: F401
# isort: on
