"""SeamRoto startup for every Nuke session (GUI, ``nuke -t``, farm): plugin paths and callbacks.

No UI here: menu.py adds the menus in GUI sessions. A broken install prints one line to stderr
and Nuke still starts.
"""

import os
import sys

try:
    import nuke

    _PLUGINS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nuke_plugins")
    for _sub in ("", "icons", "gizmos"):
        _path = os.path.join(_PLUGINS, _sub) if _sub else _PLUGINS
        if os.path.isdir(_path):
            nuke.pluginAddPath(_path)  # also puts nuke_plugins on sys.path for seamroto_nuke

    import seamroto_nuke.callbacks

    seamroto_nuke.callbacks.register()
except Exception as _err:  # never stop Nuke from starting because of SeamRoto
    sys.stderr.write(
        f"SeamRoto: not loaded ({type(_err).__name__}: {_err}); see docs/INSTALL_NUKE.md\n"
    )
