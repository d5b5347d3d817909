"""The ONNX inference server: Open Inference Protocol (V2) over REST, multi-model, micro-batching, metrics,
sampled capture. It imports nothing else of the project, so an inference VM installs only it
(``pip install 'dataops[serving]'`` or ``-r orchestrator/serving/requirements.txt``) and runs
``python -m orchestrator.serving MODEL_FOLDER ...``."""

from orchestrator.serving.settings import ServerSettings

__all__ = ["ServerSettings"]
