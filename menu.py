"""SeamRoto menus (GUI sessions only): a SeamRoto menu on the Nodes toolbar with every tool.

The entries come from ``seamroto_nuke.nodes.NODE_TYPES``, so a new tool needs no edit here.
A broken install prints one line to stderr and Nuke still starts.
"""

import sys

try:
    import nuke

    if nuke.GUI:
        import seamroto_nuke.commands
        import seamroto_nuke.nodes

        _menu = nuke.menu("Nodes").addMenu(
            "SeamRoto", icon="SeamRoto.png", tooltip="SeamRoto: puppet face tracking and roto"
        )
        for _type in seamroto_nuke.nodes.NODE_TYPES.values():
            _menu.addCommand(
                _type.menu_label,
                f"seamroto_nuke.commands.create_node({_type.name!r})",
                icon=_type.icon,
                tooltip=_type.tooltip,
            )
        _menu.addSeparator()
        _menu.addCommand(
            "Troubleshoot...",
            "seamroto_nuke.commands.troubleshoot()",
            icon="SeamRoto.png",
            tooltip="Check the SeamRoto install and show what to send your TD.",
        )
        _menu.addCommand(
            "Open log folder",
            "seamroto_nuke.commands.open_log_folder()",
            tooltip="Open the folder holding the SeamRoto log file.",
        )
except Exception as _err:  # never stop Nuke from starting because of SeamRoto
    sys.stderr.write(
        f"SeamRoto: menu not installed ({type(_err).__name__}: {_err}); see docs/INSTALL_NUKE.md\n"
    )
