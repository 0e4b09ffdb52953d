"""Synthetic split-face puppet shots with exact ground truth, for training and measuring."""

from seamroto.synth.characters import CHARACTERS, SynthCharacter
from seamroto.synth.output import read_gt, synth_command, write_shot
from seamroto.synth.shot import SynthShot, iter_frames, render_shot, rendered_mattes, synth_truth

__all__ = [
    "CHARACTERS",
    "SynthCharacter",
    "SynthShot",
    "iter_frames",
    "read_gt",
    "render_shot",
    "rendered_mattes",
    "synth_command",
    "synth_truth",
    "write_shot",
]
