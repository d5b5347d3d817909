"""Every column the pipeline file names is checked before any stage runs: the columns of the sources are carried
through validation, the cleaning steps, the joins and the feature steps, and a name that will not be there is
reported with file, line, field, the columns there are and the closest one."""

from __future__ import annotations

import textwrap
import time

import pytest

from orchestrator.artifacts.local import LocalStore
from orchestrator.errors import SpecError
from orchestrator.pipeline import sources as source_io
from orchestrator.pipeline.column_check import check_pipeline_columns
from orchestrator.pipeline.spec import load_pipeline

PIPELINE = """
name: shop
sources:
  events:
    location: events.csv
    validation:
      columns:
        ts: {{type: datetime}}
        amount: {{type: float}}
    steps:
      - rename: {{amount: price}}
      - derive: {{expensive: "price > 100"}}
  customers:
    location: customers.csv
blend:
  base: events
  joins:
    - source: customers
      keys: [customer]
features:
{features}
split:
  by: time
  column: ts
  boundaries: {{train: "2024-09-01", validation: "2024-10-01", test: "2024-11-01"}}
model:
  name: shop
  task: classification
  target: {target}
  features:
    numeric: [{numeric}]
    categorical: [segment]
  estimator: sklearn.linear_model.LogisticRegression
"""


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "events.csv").write_text("ts,customer,amount,channel\n2024-01-01T00:00:00Z,1,12.5,web\n")
    (tmp_path / "customers.csv").write_text("customer,segment,since\n1,gold,2020\n")
    (tmp_path / "helpers.py").write_text(textwrap.dedent("""
        import time

        from orchestrator.pipeline.declare import columns

        @columns(adds={"ratio": "float64"}, drops=["channel"])
        def add_ratio(frame):
            return frame.assign(ratio=frame["price"] / 2).drop(columns=["channel"])

        @columns(adds=["other"], drops=["chanel"])
        def declares_a_wrong_drop(frame):
            return frame

        def undeclared(frame):
            time.sleep(30)  # never run by the check
            return frame.assign(hidden=1)
    """))
    return tmp_path


def check(folder, features='  - derive: {big: "price > 50"}', target="big", numeric="price, since", **edits):
    text = PIPELINE.format(features=features, target=target, numeric=numeric).lstrip()
    for old, new in edits.items():
        assert old in text
        text = text.replace(old, new)
    path = folder / "pipeline.yaml"
    path.write_text(text)
    pipeline = load_pipeline(path)
    store = LocalStore(folder / "store")
    schemas = {name: source_io.read_source(source, source_io.resolve_files(source, folder, store))._meta
               for name, source in pipeline.spec.sources.items()}
    return check_pipeline_columns(pipeline, schemas), path


def line_of(path, text: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_a_pipeline_whose_names_all_exist_passes_and_says_what_the_model_stage_will_find(folder):
    columns, _ = check(folder)
    assert columns == ["ts", "customer", "price", "channel", "expensive", "segment", "since", "big"]


def test_a_misspelt_model_feature_is_reported_with_file_line_field_and_the_closest_name(folder):
    with pytest.raises(SpecError) as caught:
        check(folder, numeric="price, sinse")
    path = folder / "pipeline.yaml"
    assert str(caught.value).startswith(f"{path}:{line_of(path, 'numeric:')}: field 'model.features.numeric[1]': "
                                        f"unknown column 'sinse' (did you mean 'since'?); after the feature steps "
                                        f"the columns are ts, customer, price")


def test_a_misspelt_target_is_reported(folder):
    with pytest.raises(SpecError, match=r"field 'model.target': unknown column 'bgi' \(did you mean 'big'\?\)"):
        check(folder, target="bgi")


def test_a_column_renamed_away_by_a_cleaning_step_is_unknown_to_the_steps_after_it(folder):
    with pytest.raises(SpecError) as caught:
        check(folder, **{'derive: {expensive: "price > 100"}': 'derive: {expensive: "amount > 100"}'})
    path = folder / "pipeline.yaml"
    message = str(caught.value)
    assert message.startswith(f"{path}:{line_of(path, 'expensive')}: field 'sources.events.steps[1].derive.expensive'"
                              ": unknown column 'amount'")
    assert "columns are ts, customer, price, channel" in message


def test_a_filter_reading_a_column_no_step_made_is_reported_at_its_line(folder):
    with pytest.raises(SpecError, match=r"pipeline.yaml:\d+: field 'features\[0\].filter': unknown column 'chanel' "
                                        r"\(did you mean 'channel'\?\)"):
        check(folder, features='  - filter: "chanel == \'web\'"\n  - derive: {big: "price > 50"}')


def test_a_join_key_missing_on_the_joined_source_names_that_source(folder):
    with pytest.raises(SpecError) as caught:
        check(folder, **{"keys: [customer]": "keys: [channel]"})
    path = folder / "pipeline.yaml"
    assert (f"{path}:{line_of(path, 'keys: [channel]')}: field 'blend.joins[0].keys[0]': unknown column 'channel'; "
            f"source 'customers' has no such column: the columns are customer, segment, since") in str(caught.value)


def test_a_validation_rule_for_a_column_the_source_lacks_is_reported_before_reading_any_row(folder):
    with pytest.raises(SpecError, match=r"field 'sources.events.validation.columns.amout': unknown column 'amout' "
                                        r"\(did you mean 'amount'\?\); source 'events' has no such column"):
        check(folder, **{"amount: {type: float}": "amout: {type: float}"})


def test_the_columns_a_user_function_declares_it_adds_and_drops_are_carried_to_the_steps_after_it(folder):
    columns, _ = check(folder, features='  - function: helpers:add_ratio\n  - derive: {big: "ratio > 25"}',
                       numeric="ratio, since")
    assert "ratio" in columns and "channel" not in columns
    with pytest.raises(SpecError, match=r"field 'features\[1\].filter': unknown column 'channel'"):
        check(folder, features="  - function: helpers:add_ratio\n  - filter: \"channel == 'web'\"\n"
                               '  - derive: {big: "ratio > 25"}')


def test_a_function_declaring_it_drops_a_column_that_is_not_there_is_reported(folder):
    with pytest.raises(SpecError, match=r"field 'features\[0\].function': unknown column 'chanel' \(did you mean "
                                        r"'channel'\?\); helpers:declares_a_wrong_drop declares it drops 'chanel'"):
        check(folder, features="  - function: helpers:declares_a_wrong_drop")


def test_after_a_function_that_declares_nothing_the_names_are_left_to_its_stage_and_it_is_not_run(folder):
    started = time.monotonic()
    columns, _ = check(folder, features="  - function: helpers:undeclared", target="hidden")
    assert columns == [], "unknown until the function has run on the data"
    assert time.monotonic() - started < 20


def test_a_derive_that_fails_on_stand_in_values_is_reported_at_its_line_as_its_stage_would_not_as_a_crash(folder):
    (folder / "events.csv").write_text("ts,customer,amount,channel,code\n2024-01-01T00:00:00Z,1,12.5,web,A42\n")
    # The stand-in of a text column holds no digits: the cast fails there, as it does when the stage learns its
    # output's types from the same stand-in.
    with pytest.raises(SpecError) as caught:
        check(folder, features='  - derive: {number: "code.str.slice(1).astype(\'int64\')", big: "number > 50"}')
    path = folder / "pipeline.yaml"
    assert str(caught.value).startswith(f"{path}:{line_of(path, 'number')}: field 'features[0]': ")


def test_every_mistake_of_the_file_is_reported_at_once_one_line_each(folder):
    with pytest.raises(SpecError) as caught:
        check(folder, target="bgi", numeric="prise, since", **{"column: ts": "column: tss"})
    lines = str(caught.value).splitlines()
    assert [line.split("field ")[1].split(":")[0] for line in lines] == [
        "'split.column'", "'model.target'", "'model.features.numeric[0]'"]



HELD_TO = {
    "keeps_it": ('frame.assign(ratio=1).drop(columns=["amount"])', None),
    "keeps_a_drop": ('frame.assign(ratio=1)', "declares it drops ['amount'], but its output still has them"),
    "misses_an_add": ('frame.drop(columns=["amount"])', "declares it adds ['ratio'], but its output has no such column"),
    "adds_more": ('frame.assign(ratio=1, extra=2).drop(columns=["amount"])',
                  "returns columns it does not declare: ['extra'] (add them to `adds`)"),
    "drops_more": ('frame.assign(ratio=1).drop(columns=["amount", "ts"])',
                   "drops columns it does not declare: ['ts'] (add them to `drops`)"),
}


@pytest.mark.parametrize("name", HELD_TO)
def test_a_function_is_held_to_its_declaration_when_its_stage_runs(tmp_path, name):
    import dask.dataframe as dd
    import pandas as pd

    from orchestrator.pipeline.spec import Step
    from orchestrator.pipeline.transforms import apply_step

    body, broken = HELD_TO[name]
    module = f"held_{name}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(f"""
        from orchestrator.pipeline.declare import columns

        @columns(adds=["ratio"], drops=["amount"])
        def make(frame):
            return {body}
    """))
    frame = dd.from_pandas(pd.DataFrame({"ts": [1], "amount": [2.0], "channel": ["web"]}), npartitions=1)
    step = Step(function=f"{module}:make")
    if broken is None:
        assert list(apply_step(frame, step, tmp_path, "features[0]").columns) == ["ts", "channel", "ratio"]
        return
    with pytest.raises(SpecError) as caught:
        apply_step(frame, step, tmp_path, "features[0]")
    assert str(caught.value) == f"features[0]: function '{module}:make' {broken}"
