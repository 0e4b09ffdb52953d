"""SeamRoto core: landmark tracking and roto for split-face puppets, with no host imports."""

__version__ = "0.1.0"
