"""One root error for everything a user can act on, each kind with its own exit code."""

from __future__ import annotations


class DataopsError(Exception):
    """Root of every error the CLI turns into ``Error: ...`` and an exit code."""

    exit_code = 1


class SpecError(DataopsError):
    """A pipeline, cluster or deploy file is malformed; the message names file, line and field."""

    exit_code = 2


class SourceError(DataopsError):
    """A data source cannot be read (missing file, unreachable URL, unknown format)."""

    exit_code = 3


class ValidationFailed(DataopsError):
    """Too many rows of a source failed validation."""

    exit_code = 4


class IsolationViolation(DataopsError):
    """Train, evaluation and serving data would mix: a stage asked for a partition it may not read,
    or the split put the same key or row in two partitions."""

    exit_code = 5


class StageFailed(DataopsError):
    """A stage's own code raised."""

    exit_code = 6


class ArtifactError(DataopsError):
    """An artifact is missing, or its content does not match its recorded checksum."""

    exit_code = 7


class StoreFull(ArtifactError):
    """The disk under the store (or a stage's scratch folder) has no space left; what was published stays whole."""

    exit_code = 7


class ArtifactNotFound(ArtifactError):
    """No artifact, run or model under the given name."""

    exit_code = 8


class CloudError(DataopsError):
    """An OpenStack call failed; the message names the resource and the cloud's reason."""

    exit_code = 10


class ParityFailed(DataopsError):
    """The exported ONNX model does not predict what the trained scikit-learn model predicts."""

    exit_code = 11


class SchemaMismatch(DataopsError):
    """Input data does not match a model's input schema: a column is missing or has the wrong type."""

    exit_code = 12


class ConfigurationFailed(DataopsError):
    """An Ansible play failed on a cluster node; the message names the host, the task and the reason."""

    exit_code = 13


class ClusterNotFound(DataopsError):
    """No cluster under the given name."""

    exit_code = 14


class EndpointNotFound(DataopsError):
    """No inference endpoint under the given name."""

    exit_code = 15


class DeployFailed(DataopsError):
    """A rollout stopped: the message names the node and why; the version served before keeps serving."""

    exit_code = 16


class WaitTimeout(DataopsError):
    """A wait passed its deadline before what it waited for reached the wanted state; the message names what,
    the state it was left in and how long it was waited for (the timeout is a setting: raise it and run again)."""

    exit_code = 17


class WaitFailed(DataopsError):
    """What a wait waited for reached a failure state; the message names what, the state and the reason."""

    exit_code = 18


class StackTimedOut(WaitTimeout, CloudError):
    """A Heat stack was still in progress when its wait timed out."""

    exit_code = 17


class StackFailed(WaitFailed, CloudError):
    """A Heat stack reached ``<ACTION>_FAILED``; the message names the failed resource and the cloud's reason."""

    exit_code = 18
