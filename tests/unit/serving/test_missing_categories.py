"""A null categorical value is what the model learnt missing categories as (the card's ``missing_value``), on the
server as in `dataops predict`; a card without one still refuses it, as before."""

from __future__ import annotations

import pytest

from orchestrator.serving.card import InputSpec
from orchestrator.serving.codecs.columns import BadElement, bytes_column


def test_a_null_category_becomes_the_cards_missing_value():
    spec = InputSpec(name="sex", datatype="BYTES", missing_value="__missing__")
    array, values = bytes_column(["MALE", None, "FEMALE"], spec)
    assert values == ["MALE", "__missing__", "FEMALE"] and array[1, 0] == "__missing__"


def test_without_a_missing_value_a_null_category_is_refused_unless_nullable():
    with pytest.raises(BadElement, match=r"expected a string \(BYTES\), got null"):
        bytes_column(["MALE", None], InputSpec(name="sex", datatype="BYTES"))
    _, values = bytes_column(["MALE", None], InputSpec(name="sex", datatype="BYTES", nullable=True))
    assert values == ["MALE", ""]
