"""The V2 server's codecs, three seams a request passes in turn (as MLServer's codecs sit at its edge):

* ``decode``: a request body (V2 JSON tensors, the binary tensor extension, or records) into a ``DecodedRequest``
  of ``(rows, 1)`` arrays, checking the protocol and each element's type (``columns``);
* ``validate``: the values against the model card (NaN, infinities, training ranges and categories);
* ``encode``: the model's outputs back into a V2 response or the records answer.
"""

from orchestrator.serving.codecs.decode import decode_infer_request, decode_records
from orchestrator.serving.codecs.encode import encode_infer_response, encode_predictions
from orchestrator.serving.codecs.request import DecodedRequest, RequestedOutput
from orchestrator.serving.codecs.validate import FLAG, RANGE_POLICIES, REJECT, check_values

__all__ = [
    "FLAG", "RANGE_POLICIES", "REJECT", "DecodedRequest", "RequestedOutput", "check_values", "decode_infer_request",
    "decode_records", "encode_infer_response", "encode_predictions",
]
