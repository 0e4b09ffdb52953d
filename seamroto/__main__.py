"""``python -m seamroto``: the same CLI as the ``seamroto`` script (used by the Nuke bridge)."""

from seamroto.cli import main

if __name__ == "__main__":
    main()
