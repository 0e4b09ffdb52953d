"""SeamRoto's Nuke adapter: nodes, buttons and the bridge to the core (stdlib + nuke only).

Nothing here tracks, fits or writes .nk text: the core does, and this package reads knobs,
builds a request, hands it to ``bridge`` and pastes what comes back.
"""

ADAPTER_VERSION = "0.1.0"
