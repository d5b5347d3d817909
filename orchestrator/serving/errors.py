"""Errors of the inference server. Each carries the HTTP status it is answered with.

The server stands alone (an inference VM installs only this package), so these do not derive from the
project's DataopsError; the CLI wraps ``ModelLoadError`` where it starts the server.
"""

from __future__ import annotations


class ServingError(Exception):
    """Root of every error answered to a client: ``status`` is the HTTP status code."""

    status = 500


class BadRequest(ServingError):
    """The request is malformed or its tensors do not match the model: the message names input, expected and got."""

    status = 400


class Unauthorized(ServingError):
    """A bearer token is required and was missing or wrong."""

    status = 401


class ModelNotFound(ServingError):
    """No model (or version) of that name is known or loaded."""

    status = 404


class PayloadTooLarge(ServingError):
    """The request body is larger than the configured limit."""

    status = 413


class UnsupportedMediaType(ServingError):
    """The request body is not in an encoding the server reads."""

    status = 415


class ModelLoadError(ServingError):
    """A model folder cannot be loaded: missing file, bad card, checksum mismatch, ONNX/card disagreement."""

    status = 400


class TransportRefused(ServingError):
    """The server would answer in the clear on an address other hosts can reach, or its TLS files are unusable."""

    status = 400
