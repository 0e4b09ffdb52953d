"""Smoke test inside a real Nuke: ``nuke -t smoke_nuke.py PATTERN FIRST LAST CHARACTER``.

Creates a Read on the plates, a SeamRoto node on it, tracks twice (terminal mode runs inline)
and prints one ``SEAMROTO_SMOKE {json}`` line describing the nodes SeamRoto built, for
``test_nuke_live.py`` to check. Needs the repo root on NUKE_PATH, so init.py loads the plugin.
"""

import json
import sys

import nuke

SMOKE_TAG = "SEAMROTO_SMOKE "


def _describe(node):
    upstream = node.input(0)
    return {"name": node.name(), "class": node.Class(), "input": upstream.name() if upstream else None}


def main(argv):
    pattern, first, last, character = argv[1], int(argv[2]), int(argv[3]), argv[4]
    import seamroto_nuke.commands as commands

    read = nuke.nodes.Read(file=pattern, first=first, last=last, name="smoke_plate")
    for other in nuke.allNodes():
        other.setSelected(other is read)
    node = commands.create_node("SeamRoto")
    if node is None:
        return 1
    node["character"].setValue(character)
    commands.track(node)
    commands.track(node)
    built = [n for n in nuke.allNodes() if n.name().startswith(node.name() + "_")]
    summary = {
        "nuke": nuke.NUKE_VERSION_STRING,
        "seamroto": node.name(),
        "input": node.input(0).name() if node.input(0) else None,
        "used_model_version": node["used_model_version"].value(),
        "nodes": [_describe(n) for n in built],
    }
    sys.stdout.write(SMOKE_TAG + json.dumps(summary) + "\n")
    return 0


sys.exit(main(sys.argv))
