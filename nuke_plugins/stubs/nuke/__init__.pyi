# ruff: noqa: F403
# SeamRoto overlay for types-nuke 13.2.8.0: the same re-exports as the installed nuke-stubs
# package. Modules in this folder replace the installed ones of the same name; everything else
# (nuke._nuke, nuke.rotopaint, ...) still comes from types-nuke. See ../README.md.
from ._nuke import *
from .callbacks import *
from .colorspaces import *
from .executeInMain import *
from .overrides import *
from .scripts import scriptSaveAndClear as scriptSaveAndClear
from .utils import *
