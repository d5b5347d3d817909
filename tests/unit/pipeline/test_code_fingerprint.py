"""A user function's fingerprint follows its own code and what it uses: a comment, a docstring or an unrelated function
of the same module change nothing; the function, a helper it calls (however deep), a constant it reads, a default
argument, a closure's value or a library's version change it."""

from __future__ import annotations

import textwrap
import uuid

import numpy as np
import pandas as pd
import pytest

from orchestrator.pipeline.code_fingerprint import code_dependencies, function_fingerprint
from orchestrator.pipeline.transforms import load_function

MODULE = '''
"""Feature functions."""
import numpy as np
import pandas as pd

from {helpers} import clip_amount

THRESHOLD = 100
LABELS = {{"big": 1, "small": 0}}


def _ratio(values):
    return values / THRESHOLD


def _scaled(values):
    return _ratio(values) * 2


def add_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the amount's ratio to the threshold."""
    out = frame.copy()
    out["ratio"] = _scaled(out["amount"])  # how far above the threshold
    out["log"] = np.log1p(clip_amount(out["amount"]))
    return out


def add_label(frame, labels=LABELS):
    return frame.assign(label=(frame["amount"] > THRESHOLD).map({{True: labels["big"], False: labels["small"]}}))


def unrelated(frame):
    return frame.head(1)


def make_shift(by):
    def shift(frame):
        return frame.assign(amount=frame["amount"] + by)
    return shift


RULES = {{"twice": lambda values: values * 2, "clip": lambda values: values.clip(0)}}


def apply_rules(frame):
    return frame.assign(amount=RULES["twice"](frame["amount"]))


shift_by_one = make_shift(1)
shift_by_two = make_shift(2)
double = lambda frame: frame.assign(amount=frame["amount"] * 2)  # noqa: E731
'''

HELPERS = '''
def clip_amount(values):
    return values.clip(lower=0)


def other_helper(values):
    return values
'''


class Module:
    """A feature module and its helpers module, written with fresh names (no other test's module is imported)."""

    def __init__(self, folder):
        self.folder = folder
        self.name, self.helpers = f"features_{uuid.uuid4().hex[:8]}", f"helpers_{uuid.uuid4().hex[:8]}"
        self.texts = {self.name: MODULE.format(helpers=self.helpers), self.helpers: HELPERS}
        self._save()

    def _save(self):
        for module_name, text in self.texts.items():
            (self.folder / f"{module_name}.py").write_text(textwrap.dedent(text))

    def function(self, name="add_features"):
        return load_function(f"{self.name}:{name}", self.folder)

    def fingerprint(self, name="add_features"):
        return function_fingerprint(self.function(name))

    def edit(self, old, new, which="features"):
        key = self.name if which == "features" else self.helpers
        assert old in self.texts[key], f"{old!r} is not in the {which} module"
        self.texts[key] = self.texts[key].replace(old, new)
        self._save()


@pytest.fixture
def module(tmp_path):
    return Module(tmp_path)


def test_a_comment_a_docstring_or_the_layout_change_nothing(module):
    before = module.fingerprint()
    module.edit("  # how far above the threshold", "  # the ratio, said otherwise\n    # and a second comment line")
    module.edit('"""Add the amount\'s ratio to the threshold."""', '"""Ratio to the threshold, documented anew."""')
    module.edit('out = frame.copy()', 'out = frame.copy(\n    )')
    assert module.fingerprint() == before


def test_editing_an_unrelated_function_of_the_same_module_changes_nothing(module):
    before = module.fingerprint()
    module.edit("return frame.head(1)", "return frame.head(2)")
    module.edit("return values\n", "return values * 1\n", which="helpers")
    assert module.fingerprint() == before


def test_editing_the_function_changes_it(module):
    before = module.fingerprint()
    module.edit('np.log1p(clip_amount(out["amount"]))', 'np.log(clip_amount(out["amount"]))')
    assert module.fingerprint() != before


def test_editing_a_helper_it_calls_changes_it_however_deep_and_in_whichever_module(module):
    first = module.fingerprint()
    module.edit("return values / THRESHOLD", "return values / (THRESHOLD + 1)")  # _ratio, called by _scaled
    second = module.fingerprint()
    module.edit("values.clip(lower=0)", "values.clip(lower=1)", which="helpers")
    assert len({first, second, module.fingerprint()}) == 3
    # The code that runs is the edited code too, in this process (a sweep, a tick loop).
    frame = pd.DataFrame({"amount": [0.0, 150.0]})
    assert module.function()(frame)["log"].tolist() == pytest.approx(np.log1p([1.0, 150.0]).tolist())
    assert module.function()(frame)["ratio"].tolist() == pytest.approx([0.0, 150.0 / 101 * 2])


def test_editing_a_constant_it_reads_changes_it_and_only_the_functions_reading_it(module):
    features, label = module.fingerprint(), module.fingerprint("add_label")
    module.edit('LABELS = {"big": 1, "small": 0}', 'LABELS = {"big": 1, "small": -1}')
    assert module.fingerprint() == features and module.fingerprint("add_label") != label  # a default argument's value
    module.edit("THRESHOLD = 100", "THRESHOLD = 150")
    assert module.fingerprint() != features


def test_closures_made_by_one_factory_differ_by_their_values_and_a_lambda_by_its_body(module):
    assert module.fingerprint("shift_by_one") != module.fingerprint("shift_by_two")
    lam = module.fingerprint("double")
    module.edit("# noqa: E731", "# noqa: E731 (a lambda, on purpose)")
    assert module.fingerprint("double") == lam
    module.edit('frame["amount"] * 2)', 'frame["amount"] * 3)')
    assert module.fingerprint("double") != lam


def test_lambdas_kept_in_a_table_are_code_too(module):
    before = module.fingerprint("apply_rules")
    module.edit('"clip": lambda values: values.clip(0)', '"clip": lambda values: values.clip(1)')
    assert module.fingerprint("apply_rules") != before


def test_the_libraries_it_uses_count_by_their_versions(module):
    dependencies = code_dependencies(module.function())
    assert dependencies["libraries"] == {"numpy": np.__version__}  # pandas' frame methods are attributes, not names
    assert set(dependencies["code"]) == {f"{module.name}:add_features", f"{module.name}:_scaled",
                                         f"{module.name}:_ratio", f"{module.helpers}:clip_amount"}


def test_a_function_importing_a_library_itself_counts_its_version(tmp_path):
    import sklearn

    name = f"inline_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("def fit(frame):\n    import sklearn.preprocessing\n    return frame\n")
    dependencies = code_dependencies(load_function(f"{name}:fit", tmp_path))
    assert dependencies["libraries"] == {"scikit-learn": sklearn.__version__}


def test_functions_calling_each_other_are_walked_once(tmp_path):
    name = f"recursive_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        "def even(n):\n    return True if n == 0 else odd(n - 1)\n\n\n"
        "def odd(n):\n    return False if n == 0 else even(n - 1)\n")
    dependencies = code_dependencies(load_function(f"{name}:even", tmp_path))
    assert set(dependencies["code"]) == {f"{name}:even", f"{name}:odd"}
