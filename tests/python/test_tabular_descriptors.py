"""The worker reads tabular descriptors as the master's codec writes them.

tests/golden/tabular_descriptors.json is shared with the C++ codec's test
(tests/unit/common/tabular_descriptor_test.cc): both read the same cases.
"""

import json
import os

import pytest

from prs import _tabular as tab

GOLDEN = os.path.join(os.path.dirname(__file__), "..", "golden", "tabular_descriptors.json")

with open(GOLDEN, encoding="utf-8") as f:
    _GOLDEN = json.load(f)


def _stamp(case):
    return None if case["stamp"] is None else tuple(case["stamp"])


def _expected(case):
    """The worker's reading of a case: positions without their record numbers."""
    kind = case["kind"]
    if kind == "range":
        end = case["end"][0]
        return tab.Range(case["format"], case["start"][0], None if end == -1 else end,
                         case["path"], _stamp(case))
    if kind == "group":
        return tab.Group(case["format"], tuple(json.loads(case["keys_json"])),
                         tuple(json.loads(case["values_json"])), case["path"], _stamp(case))
    if case["unit"] == "keys":
        return tab.Plan("keys", case["format"], tuple(json.loads(case["keys_json"])),
                        case["path"], _stamp(case), 0)
    return tab.Plan(case["unit"], case["format"], case["size"], case["path"], _stamp(case),
                    case["begin"][0])


@pytest.mark.parametrize("case", _GOLDEN["cases"], ids=lambda c: c["descriptor"])
def test_golden_descriptor_is_read_as_its_fields(case):
    parsed = tab.parse_descriptor(case["descriptor"])
    assert parsed == _expected(case)
    assert type(parsed) is type(_expected(case))


@pytest.mark.parametrize("item", _GOLDEN["malformed"])
def test_golden_malformed_descriptor_is_refused(item):
    with pytest.raises(tab.DescriptorError):
        tab.parse_descriptor(item)
