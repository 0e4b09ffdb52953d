"""Nuke script (.nk) text: reading what Nuke saved and writing what Nuke pastes."""
