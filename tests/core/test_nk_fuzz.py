"""Fuzz the .nk reader with mutated real scripts: it may only succeed or raise NkParseError.

Mutations: byte flips, truncation, deleting or duplicating braces, inserting TCL-special
characters and splicing random chunks. Every node of the result then goes through the typed
readers (roto shapes, tracker tracks, Read shots, formats) and ``inspect``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seamroto.errors import NkParseError
from seamroto.nk.inspect import inspect_parsed
from seamroto.nk.reader import (
    READ_CLASSES,
    ROTO_CLASSES,
    TRACKER_CLASSES,
    node_format,
    parse_script,
    read_node_shot,
    roto_shapes,
    tracker_tracks,
)

REFERENCE_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "nk"
MAX_EXAMPLES = 200
SPECIAL = [b"{", b"}", b'"', b"\\", b"[", b"]", b"\n", b"\\\n", b"{{{", b"}}}", b"\xff", b"x", b";"]

pytestmark = pytest.mark.skipif(
    not REFERENCE_DIR.is_dir(), reason="../shared/reference/nk/ is not beside this checkout"
)


@cache
def reference_files() -> Dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(REFERENCE_DIR.glob("*.nk"))}


@cache
def brace_positions(name: str) -> Tuple[int, ...]:
    data = reference_files()[name]
    return tuple(i for i, b in enumerate(data) if b in b"{}")


Mutation = Tuple[str, float, float, int]


def mutate(name: str, data: bytes, mutations: List[Mutation]) -> bytes:
    out = bytearray(data)
    for kind, a, b, k in mutations:
        if not out:
            break
        i = int(a * (len(out) - 1))
        if kind == "flip":
            out[i] ^= k or 1
        elif kind == "truncate":
            del out[i:]
        elif kind in ("delete_brace", "duplicate_brace"):
            braces = [j for j in brace_positions(name) if j < len(out)] or [i]
            j = braces[int(b * (len(braces) - 1))]
            if kind == "delete_brace":
                del out[j]
            else:
                out.insert(j, out[j])
        elif kind == "insert":
            out[i:i] = SPECIAL[k % len(SPECIAL)]
        elif kind == "splice":
            j = int(b * (len(out) - 1))
            chunk = bytes(out[min(i, j) : min(max(i, j), min(i, j) + 4000)])
            at = (k * 7919) % len(out)
            out[at:at] = chunk
    return bytes(out)


def read_everything(data: bytes) -> None:
    """Run every reader entry point; only NkParseError may escape, and is swallowed here."""
    try:
        script = parse_script(data, "fuzz.nk")
    except NkParseError:
        return
    for node in script.nodes:
        try:
            fmt = node_format(script, node)
            height = float(fmt.height) if fmt is not None else 0.0
            if node.node_class in ROTO_CLASSES:
                roto_shapes(script, node, height)
            if node.node_class in TRACKER_CLASSES:
                tracker_tracks(script, node, height)
            if node.node_class in READ_CLASSES:
                read_node_shot(script, node)
        except NkParseError:
            pass
    inspect_parsed(script)


mutation_strategy = st.tuples(
    st.sampled_from(["flip", "truncate", "delete_brace", "duplicate_brace", "insert", "splice"]),
    st.floats(0, 1),
    st.floats(0, 1),
    st.integers(0, 255),
)


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    name=st.sampled_from(sorted(reference_files()) if REFERENCE_DIR.is_dir() else ["none"]),
    mutations=st.lists(mutation_strategy, min_size=1, max_size=4),
)
def test_mutated_reference_files_only_raise_parse_errors(
    name: str, mutations: List[Mutation]
) -> None:
    read_everything(mutate(name, reference_files()[name], mutations))


@given(st.binary(max_size=2000))
@settings(max_examples=MAX_EXAMPLES, deadline=None)
def test_random_bytes_only_raise_parse_errors(data: bytes) -> None:
    read_everything(data)


@pytest.mark.parametrize(
    "text",
    [
        "{" * 100_000,
        "}" * 10,
        "Roto {\n curves " + "{" * 5000 + "\n}\n",
        "Roto {\n curves {" + "{" * 5000 + "}" * 5000 + "}\n}\n",
        "Tracker4 {\n tracks {" + "{" * 3000 + "}" * 3000 + "}\n}\n",
        '"' * 7 + "\\",
        "Root {\n format \"1e999 1e999 1\"\n first_frame 1e999\n}\n",
        "Read {\n file a\n first 5\n last 1\n}\n",
        "Roto {\n curves {{{n {layer Root {curvegroup B 512 bezier {{cc {px x7f800000 {0 0}"
        " {1 1} {0 0}}} idem}}}}}}\n}\n",
        "Tracker4 {\n tracks {{1 31 1} {{1 a {curve x1e999 1} {curve x1 nan}}}}\n}\n",
    ],
)
def test_pathological_inputs(text: str) -> None:
    read_everything(text.encode())
