"""result.json layout: readable outer keys, compact leaves, the same data."""

from __future__ import annotations

import json

from seamroto.result import dumps_layered


def test_layered_json_is_the_same_data_with_a_line_per_outer_key() -> None:
    data = {"schema": "S.1", "landmarks": {"eye": {"1001": [1.5, 2.25, 0.9]}, "nose": {}}, "flagged_frames": [3, 4]}
    text = dumps_layered(data, 2)
    assert json.loads(text) == data
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    assert '  "eye": {"1001": [1.5, 2.25, 0.9]},' in lines
    assert ' "flagged_frames": [3, 4]' in lines
