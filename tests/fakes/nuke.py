"""A recording fake of Nuke's ``nuke`` module, for adapter tests on machines without Nuke.

It behaves like the host where the adapter depends on it (deadline-cloud-for-nuke's
``mock_stubs`` idea): knobs remember values, nodes have inputs, names uncollide, Groups are
contexts, ``nodePaste`` runs the .nk stack machine (``set``/``push``/``inputs``) well enough to
create nodes with their classes, names and wiring, ``execute`` writes files for a Write node,
``executeInMainThread`` runs inline, and ``ProgressTask`` records progress and can be cancelled.

Spec: every public name here exists in types-nuke (``test_fake_nuke.py`` checks it), and an
unknown attribute raises AttributeError (no MagicMock). Test controls and records live in
``_fake`` (not Nuke API); the installing fixture is in ``tests/nuke_adapter/conftest.py``.
"""

from __future__ import annotations

import re as _re
import threading as _threading
from pathlib import Path as _Path
from typing import Any as _Any
from typing import Callable as _Callable
from typing import Dict as _Dict
from typing import List as _List
from typing import Optional as _Optional
from typing import Tuple as _Tuple

GUI = True
INTERACTIVE = True
NUKE_VERSION_MAJOR = 15
NUKE_VERSION_MINOR = 1
NUKE_VERSION_STRING = "15.1v3"

# Knob flags (values differ from Nuke's; only identity matters to the adapter).
DISABLED = 0x80
NO_ANIMATION = 0x100
INVISIBLE = 0x400
STARTLINE = 0x1000
ENDLINE = 0x2000
READ_ONLY = 0x10000000
INPUTS = 0x1
HIDDEN_INPUTS = 0x2
EXPRESSIONS = 0x4

_DEFAULT_W, _DEFAULT_H = 80, 18


class CancelledError(Exception):
    """Raised by Nuke for a cancelled operation."""


# --- test controls and records -----------------------------------------------------------------


class _FakeState:
    """Controls (answers, cancel) and records (dialogs, renders, pastes) of one fake session."""

    def __init__(self) -> None:
        self.ask_answer = True
        self.asked: _List[str] = []
        self.messages: _List[str] = []
        self.get_filename_answer: _Optional[str] = None
        self.cancel_progress = False
        self.cancel_after_updates: _Optional[int] = None
        self.progress_tasks: _List[ProgressTask] = []
        self.executed: _List[_Tuple[str, int, int]] = []
        self.execute_error: _Optional[BaseException] = None
        self.pasted: _List[str] = []
        self.copied: _List[str] = []
        self.plugin_paths: _List[str] = []
        self.callbacks: _Dict[str, _List[_Tuple[_Callable[..., _Any], str]]] = {}
        self.menus: _Dict[str, Menu] = {}
        self.main_thread_calls: _List[str] = []
        self.panels_shown: _List[str] = []
        self.this_node: _List[Node] = []
        self.this_knob: _List[Knob] = []
        self.current_frame = 1001
        self.lock = _threading.RLock()

    def fire_knob_changed(self, node: Node, knob_name: str) -> None:
        """Call the registered knobChanged callbacks as Nuke would for ``node[knob_name]``."""
        for fn, node_class in list(self.callbacks.get("knobChanged", [])):
            if node_class not in ("*", node.Class()):
                continue
            self.this_node.append(node)
            self.this_knob.append(node[knob_name])
            try:
                fn()
            finally:
                self.this_node.pop()
                self.this_knob.pop()


_fake = _FakeState()


# --- knobs -------------------------------------------------------------------------------------


class Knob:
    """A knob that remembers its value, label, tooltip, flags and enabled state."""

    _default: _Any = ""

    def __init__(self, name: str, label: _Optional[str] = None, *args: _Any) -> None:
        self._name = name
        self._label = name if label is None else label
        self._value: _Any = self._default
        self._tooltip = ""
        self._flags = STARTLINE
        self._enabled = True
        self._visible = True
        self._node: _Optional[Node] = None

    def Class(self) -> str:
        return type(self).__name__

    def name(self) -> str:
        return self._name

    def label(self) -> str:
        return self._label

    def setLabel(self, label: str) -> None:
        self._label = label

    def tooltip(self) -> str:
        return self._tooltip

    def setTooltip(self, tooltip: str) -> None:
        self._tooltip = tooltip

    def setFlag(self, flag: int) -> None:
        self._flags |= flag

    def clearFlag(self, flag: int) -> None:
        self._flags &= ~flag

    def getFlag(self, flag: int) -> bool:
        return bool(self._flags & flag)

    def setEnabled(self, enabled: bool) -> None:
        self._enabled = bool(enabled)

    def enabled(self) -> bool:
        return self._enabled

    def setVisible(self, visible: bool) -> None:
        self._visible = bool(visible)

    def visible(self) -> bool:
        return self._visible

    def value(self, *args: _Any) -> _Any:
        return self._value

    def getValue(self, *args: _Any) -> _Any:
        return self._value

    def setValue(self, val: _Any, *args: _Any) -> bool:
        self._value = val
        return True

    def node(self) -> Node:
        if self._node is None:
            raise ValueError(f"knob {self._name} is not on a node")
        return self._node

    def toScript(self, *args: _Any) -> str:
        return _script_word(self._value)

    def fromScript(self, script: str) -> None:
        self._value = script


class Array_Knob(Knob):
    _default: _Any = 0.0

    def setRange(self, minimum: float, maximum: float) -> None:
        self._range = (minimum, maximum)

    def setValue(self, val: _Any, *args: _Any) -> bool:
        self._value = float(val)
        return True


class Unsigned_Knob(Array_Knob):
    _default: _Any = 0


class Int_Knob(Array_Knob):
    _default: _Any = 0

    def setValue(self, val: _Any, *args: _Any) -> bool:
        self._value = int(val)
        return True

    def value(self, *args: _Any) -> int:
        return int(self._value)


class Double_Knob(Array_Knob):
    pass


class Boolean_Knob(Array_Knob):
    _default: _Any = False

    def __init__(self, name: str, label: _Optional[str] = None, value: bool = False) -> None:
        super().__init__(name, label)
        self._value = bool(value)

    def setValue(self, val: _Any, *args: _Any) -> bool:
        self._value = bool(val)
        return True

    def value(self, *args: _Any) -> bool:
        return bool(self._value)


class Enumeration_Knob(Unsigned_Knob):
    """Values by name; setting a name that is not in the menu fails, as in Nuke."""

    def __init__(self, name: str, label: _Optional[str] = None, values: _Optional[_List[str]] = None) -> None:
        super().__init__(name, label)
        self._values: _List[str] = list(values or [])
        self._value = self._values[0] if self._values else ""

    def values(self) -> _List[str]:
        return list(self._values)

    def setValues(self, values: _List[str]) -> None:
        self._values = [str(v) for v in values]
        if self._value not in self._values:
            self._value = self._values[0] if self._values else ""

    def numValues(self) -> int:
        return len(self._values)

    def enumName(self, n: int) -> str:
        return self._values[n]

    def setValue(self, val: _Any, *args: _Any) -> bool:
        if isinstance(val, (int, float)) and not isinstance(val, bool):
            self._value = self._values[int(val)]
            return True
        if str(val) not in self._values:
            raise ValueError(f"{self._name}: {val!r} is not one of {self._values}")
        self._value = str(val)
        return True

    def value(self, *args: _Any) -> str:
        return str(self._value)


class String_Knob(Knob):
    def __init__(self, name: str, label: _Optional[str] = None, text: str = "") -> None:
        super().__init__(name, label)
        self._value = text

    def setValue(self, val: _Any, *args: _Any) -> bool:
        self._value = "" if val is None else str(val)
        return True

    def value(self, *args: _Any) -> str:
        return str(self._value)


class EvalString_Knob(String_Knob):
    def evaluate(self, *args: _Any) -> str:
        """Nuke expands Tcl here; the fake has none to expand."""
        return str(self._value)


class File_Knob(EvalString_Knob):
    pass


class Multiline_Eval_String_Knob(EvalString_Knob):
    pass


class Script_Knob(String_Knob):
    def __init__(self, name: str, label: _Optional[str] = None, command: str = "") -> None:
        super().__init__(name, label, command)
        self._flags = 0  # buttons sit on one line unless STARTLINE is set

    def command(self) -> str:
        return str(self._value)

    def setCommand(self, cmd: str) -> None:
        self._value = cmd

    def execute(self) -> None:
        """Run the button's Python with ``nuke.thisNode()`` = its node, like a click."""
        import sys

        module = sys.modules[__name__]
        _fake.this_node.append(self.node())
        _fake.this_knob.append(self)
        try:
            exec(compile(self.command(), f"<{self._name} button>", "exec"), {"nuke": module})
        finally:
            _fake.this_node.pop()
            _fake.this_knob.pop()


class PyScript_Knob(Script_Knob):
    pass


class Text_Knob(Knob):
    def __init__(self, name: str, label: _Optional[str] = None, text: str = "") -> None:
        super().__init__(name, label)
        self._value = text


class Tab_Knob(Knob):
    pass


class BBox_Knob(Array_Knob):
    """x, y, r, t of an on-screen box, as Nuke holds it (format pixels, origin bottom-left)."""

    def __init__(self, name: str, label: _Optional[str] = None, *args: _Any) -> None:
        super().__init__(name, label)
        self._value = [0.0, 0.0, 1.0, 1.0]

    def value(self, *args: _Any) -> _Any:
        if args and isinstance(args[0], int):
            return self._value[args[0]]
        return list(self._value)

    def setValue(self, val: _Any, *args: _Any) -> bool:
        if args and isinstance(args[0], int):
            self._value[args[0]] = float(val)
        else:
            self._value = [float(v) for v in val]
        return True

    def x(self) -> float:
        return self._value[0]

    def y(self) -> float:
        return self._value[1]

    def r(self) -> float:
        return self._value[2]

    def t(self) -> float:
        return self._value[3]

    def setX(self, v: float) -> None:
        self._value[0] = float(v)

    def setY(self, v: float) -> None:
        self._value[1] = float(v)

    def setR(self, v: float) -> None:
        self._value[2] = float(v)

    def setT(self, v: float) -> None:
        self._value[3] = float(v)

    def names(self, i: int) -> str:
        return "xyrt"[i]

    def toDict(self) -> _Dict[str, float]:
        return dict(zip("xyrt", self._value))

    def fromDict(self, box: _Dict[str, float]) -> None:
        self._value = [float(box[k]) for k in "xyrt"]

    def toScript(self, *args: _Any) -> str:
        return "{" + " ".join(f"{v:g}" for v in self._value) + "}"


# --- formats and ranges --------------------------------------------------------------------------


class Format:
    def __init__(self, width: int = 64, height: int = 32, pixel_aspect: float = 1.0) -> None:
        self._size = (width, height, pixel_aspect)

    def width(self) -> int:
        return self._size[0]

    def height(self) -> int:
        return self._size[1]

    def pixelAspect(self) -> float:
        return self._size[2]


class FrameRange:
    def __init__(self, first: int, last: int) -> None:
        self._range = (first, last)

    def first(self) -> int:
        return self._range[0]

    def last(self) -> int:
        return self._range[1]


# --- nodes ---------------------------------------------------------------------------------------

# class -> (max inputs, {knob: (knob class, default)})
_NODE_CLASSES: _Dict[str, _Tuple[int, _Dict[str, _Tuple[type, _Any]]]] = {
    "Read": (
        0,
        {
            "file": (File_Knob, ""),
            "first": (Int_Knob, 1),
            "last": (Int_Knob, 1),
            "colorspace": (String_Knob, "default"),
            "raw": (Boolean_Knob, False),
        },
    ),
    "Write": (
        1,
        {
            "file": (File_Knob, ""),
            "file_type": (String_Knob, ""),
            "channels": (String_Knob, "rgb"),
            "datatype": (String_Knob, "16 bit half"),
            "colorspace": (String_Knob, "default"),
            "first": (Int_Knob, 1),
            "last": (Int_Knob, 1),
        },
    ),
    "Tracker4": (3, {"tracks": (String_Knob, ""), "reference_frame": (Int_Knob, 1)}),
    "Roto": (1, {"curves": (String_Knob, ""), "output": (String_Knob, "alpha")}),
    "Grade": (2, {"white": (Double_Knob, 1.0)}),
    "Reformat": (1, {"format": (String_Knob, "")}),
    "Dot": (1, {}),
    "Input": (0, {"number": (Int_Knob, 0)}),
    "Output": (1, {}),
    "Group": (0, {}),
    "BackdropNode": (
        0,
        {
            "bdwidth": (Int_Knob, 200),
            "bdheight": (Int_Knob, 100),
            "note_font_size": (Int_Knob, 14),
            "z_order": (Int_Knob, 0),
        },
    ),
    "Root": (0, {"first_frame": (Int_Knob, 1), "last_frame": (Int_Knob, 100)}),
}
_COMMON_KNOBS: _Dict[str, _Tuple[type, _Any]] = {
    "name": (String_Knob, ""),
    "label": (String_Knob, ""),
    "selected": (Boolean_Knob, False),
    "xpos": (Int_Knob, 0),
    "ypos": (Int_Knob, 0),
    "tile_color": (Int_Knob, 0),
    "disable": (Boolean_Knob, False),
    "note_font": (String_Knob, ""),
    "showPanel": (Knob, ""),  # Nuke sends knobChanged with it when a panel opens
}


class Node:
    """A node with knobs and inputs, living in a Group."""

    def __init__(self, cls: str, parent: _Optional[Group], name: str = "") -> None:
        if cls not in _NODE_CLASSES:
            raise RuntimeError(f"{cls}: unknown command")
        self._class = cls
        self._max_inputs = _NODE_CLASSES[cls][0]
        self._knobs: _Dict[str, Knob] = {}
        self._inputs: _List[_Optional[Node]] = []
        self._parent = parent
        self._format = Format()
        for knob_name, (knob_cls, default) in {**_COMMON_KNOBS, **_NODE_CLASSES[cls][1]}.items():
            knob = knob_cls(knob_name)
            knob.setValue(default)
            self._attach(knob)
        if parent is not None:
            self._knobs["name"].setValue(parent._unique_name(name or f"{cls}1"))
            parent._children.append(self)

    def _attach(self, knob: Knob) -> None:
        knob._node = self
        self._knobs[knob.name()] = knob

    def Class(self) -> str:
        return self._class

    def name(self) -> str:
        return str(self._knobs["name"].value())

    def fullName(self) -> str:
        parent = self._parent
        if parent is None or isinstance(parent, Root):
            return self.name()
        return f"{parent.fullName()}.{self.name()}"

    def setName(self, name: str, uncollide: bool = False, updateExpressions: bool = False) -> None:
        if name == self.name():
            return
        parent = self._parent
        if parent is not None and parent.node(name) is not None:
            if not uncollide:
                raise ValueError(f"a node called {name} already exists")
            name = parent._unique_name(name)
        self._knobs["name"].setValue(name)

    def knob(self, p: _Any, follow_link: bool = False) -> _Optional[Knob]:
        if isinstance(p, int):
            return list(self._knobs.values())[p]
        return self._knobs.get(p)

    def knobs(self) -> _Dict[str, Knob]:
        return dict(self._knobs)

    def allKnobs(self) -> _List[Knob]:
        return list(self._knobs.values())

    def __getitem__(self, name: str) -> Knob:
        knob = self._knobs.get(name)
        if knob is None:
            raise NameError(f"knob {name} does not exist")
        return knob

    def addKnob(self, knob: Knob) -> None:
        if knob.name() in self._knobs:
            raise RuntimeError(f"{self.name()}.{knob.name()} already exists")
        self._attach(knob)

    def removeKnob(self, knob: Knob) -> None:
        self._knobs.pop(knob.name(), None)

    def maxInputs(self) -> int:
        return self._max_inputs

    def minInputs(self) -> int:
        return 0

    def inputs(self) -> int:
        while self._inputs and self._inputs[-1] is None:
            self._inputs.pop()
        return len(self._inputs)

    def input(self, index: int) -> _Optional[Node]:
        return self._inputs[index] if index < len(self._inputs) else None

    def canSetInput(self, i: int, node: _Optional[Node]) -> bool:
        return i < self.maxInputs() and node is not self

    def setInput(self, i: int, node: _Optional[Node]) -> bool:
        if not self.canSetInput(i, node):
            return False
        while len(self._inputs) <= i:
            self._inputs.append(None)
        self._inputs[i] = node
        return True

    def connectInput(self, i: int, node: _Optional[Node]) -> bool:
        return self.setInput(i, node)

    def dependent(self, mask: int = INPUTS, forceEvaluate: bool = True) -> _List[Node]:
        parent = self._parent
        siblings = parent._children if parent is not None else []
        return [n for n in siblings if self in n._inputs]

    def xpos(self) -> int:
        return int(self._knobs["xpos"].value())

    def ypos(self) -> int:
        return int(self._knobs["ypos"].value())

    def setXYpos(self, x: int, y: int) -> None:
        self._knobs["xpos"].setValue(int(x))
        self._knobs["ypos"].setValue(int(y))

    def setXpos(self, x: int) -> None:
        self._knobs["xpos"].setValue(int(x))

    def setYpos(self, y: int) -> None:
        self._knobs["ypos"].setValue(int(y))

    def screenWidth(self) -> int:
        return _DEFAULT_W

    def screenHeight(self) -> int:
        return _DEFAULT_H

    def isSelected(self) -> bool:
        return bool(self._knobs["selected"].value())

    def setSelected(self, selected: bool) -> None:
        self._knobs["selected"].setValue(bool(selected))

    def parent(self) -> Group:
        if self._parent is None:
            raise ValueError("the root has no parent")
        return self._parent

    def firstFrame(self) -> int:
        if self._class == "Read":
            return int(self._knobs["first"].value())
        upstream = self.input(0)
        return upstream.firstFrame() if upstream is not None else int(root()["first_frame"].value())

    def lastFrame(self) -> int:
        if self._class == "Read":
            return int(self._knobs["last"].value())
        upstream = self.input(0)
        return upstream.lastFrame() if upstream is not None else int(root()["last_frame"].value())

    def frameRange(self) -> FrameRange:
        return FrameRange(self.firstFrame(), self.lastFrame())

    def format(self) -> Format:
        upstream = self.input(0)
        if self._class not in ("Read", "Root") and upstream is not None:
            return upstream.format()
        return self._format

    def showControlPanel(self, forceFloat: bool = False) -> None:
        _fake.panels_shown.append(self.fullName())

    def writeKnobs(self, flags: int = 0) -> str:
        return "\n".join(f"{k.name()} {k.toScript()}" for k in self._knobs.values())

    def __repr__(self) -> str:
        return f"<fake {self._class} {self.fullName()}>"


class Group(Node):
    """A Group: a node that holds nodes and is a context (``with group:``)."""

    def __init__(self, cls: str = "Group", parent: _Optional[Group] = None, name: str = "") -> None:
        self._children: _List[Node] = []
        super().__init__(cls, parent, name)

    def _unique_name(self, name: str) -> str:
        if self.node(name) is None:
            return name
        match = _re.match(r"^(.*?)(\d*)$", name)
        stem, digits = (match.group(1), match.group(2)) if match else (name, "")
        number = int(digits) + 1 if digits else 1
        while self.node(f"{stem}{number}") is not None:
            number += 1
        return f"{stem}{number}"

    def maxInputs(self) -> int:
        return sum(1 for n in self._children if n.Class() == "Input")

    def node(self, s: str) -> _Optional[Node]:
        for child in self._children:
            if child.name() == s:
                return child
        return None

    def nodes(self) -> _List[Node]:
        return list(self._children)

    def numNodes(self) -> int:
        return len(self._children)

    def begin(self) -> Group:
        _context.append(self)
        return self

    def end(self) -> None:
        if len(_context) > 1 and _context[-1] is self:
            _context.pop()

    def __enter__(self) -> Group:
        return self.begin()

    def __exit__(self, *exc: object) -> None:
        self.end()


class Root(Group):
    def __init__(self) -> None:
        super().__init__("Root", None)
        self._knobs["name"].setValue("Root")

    def name(self) -> str:
        return str(self._knobs["name"].value())


class BackdropNode(Node):
    def screenWidth(self) -> int:
        return int(self._knobs["bdwidth"].value())

    def screenHeight(self) -> int:
        return int(self._knobs["bdheight"].value())


_root = Root()
_context: _List[Group] = [_root]


def _current() -> Group:
    return _context[-1]


def _make(cls: str, knob_values: _Dict[str, _Any]) -> Node:
    parent = _current()
    name = str(knob_values.pop("name", ""))
    node: Node
    if cls == "Group":
        node = Group("Group", parent, name)
    elif cls == "BackdropNode":
        node = BackdropNode(cls, parent, name)
    else:
        node = Node(cls, parent, name)
    for knob_name, value in knob_values.items():
        node[knob_name].setValue(value)  # unknown knobs fail, as in Nuke
    return node


class NodeConstructor:
    def __init__(self, cls: str) -> None:
        self._cls = cls

    def __call__(self, *args: _Any, **kwargs: _Any) -> Node:
        return _make(self._cls, dict(kwargs))


class Nodes:
    """``nuke.nodes.Read(file=...)``: create without selecting or auto-connecting."""

    def __getattr__(self, item: str) -> NodeConstructor:
        if item.startswith("_"):
            raise AttributeError(item)
        return NodeConstructor(item)


nodes = Nodes()


def root() -> Root:
    return _root


def frame(f: _Optional[int] = None) -> int:
    """The Viewer's current frame (``_fake.current_frame``); ``frame(f)`` sets it."""
    if f is not None:
        _fake.current_frame = int(f)
    return _fake.current_frame


def thisNode() -> Node:
    return _fake.this_node[-1]


def thisKnob() -> Knob:
    return _fake.this_knob[-1]


def thisGroup() -> Group:
    return _current()


def toNode(s: str) -> _Optional[Node]:
    found = _current().node(s)
    if found is not None:
        return found
    group: _Optional[Node] = _root
    for part in s.split("."):
        if not isinstance(group, Group):
            return None
        group = group.node(part)
    return group


def allNodes(filter: _Optional[str] = None, group: _Optional[Group] = None, recurseGroups: bool = False) -> _List[Node]:
    context = group if group is not None else _current()
    return [n for n in context.nodes() if filter is None or n.Class() == filter]


def selectedNodes(filter: _Optional[str] = None) -> _List[Node]:
    return [n for n in allNodes(filter) if n.isSelected()]


def selectedNode() -> Node:
    picked = selectedNodes()
    if not picked:
        raise ValueError("no node selected")
    return picked[-1]


def createNode(typ: str, knobs: str = "", inpanel: bool = True) -> Node:
    """Create in the current context below the selected node, selected, and connected to it."""
    selected = selectedNodes()
    node = _make(typ, {})
    for other in allNodes():
        other.setSelected(False)
    node.setSelected(True)
    if len(selected) == 1:
        node.setXYpos(selected[0].xpos(), selected[0].ypos() + 60)
        if node.maxInputs() > 0:
            node.setInput(0, selected[0])
    if inpanel and GUI:
        node.showControlPanel()
    return node


def delete(n: _Optional[Node]) -> None:
    if n is None or n._parent is None:
        return
    parent = n._parent
    parent._children.remove(n)
    for other in parent._children:
        other._inputs = [None if i is n else i for i in other._inputs]


def filename(node: Node, i: int = 0) -> _Optional[str]:
    knob = node.knob("file")
    text = str(knob.value()) if knob is not None else ""
    return text or None


def execute(
    nameOrNode: _Any, start: int, end: int, incr: int = 1, views: _Any = None, continueOnError: bool = False
) -> None:
    """Render a Write: one small file per frame (``%04d`` or ``####`` in its file knob)."""
    node = toNode(nameOrNode) if isinstance(nameOrNode, str) else nameOrNode
    if node is None or node.Class() != "Write":
        raise RuntimeError(f"{nameOrNode}: only Write nodes can be executed here")
    if _fake.execute_error is not None:
        raise _fake.execute_error
    pattern = str(node["file"].value())
    for frame in range(start, end + 1, incr):
        path = _Path(_frame_path(pattern, frame))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"fake exr frame %d" % frame)
    _fake.executed.append((node.fullName(), start, end))


def _frame_path(pattern: str, frame: int) -> str:
    if "%" in pattern:
        return pattern % frame
    return _re.sub(r"#+", lambda m: str(frame).zfill(len(m.group(0))), pattern)


# --- dialogs, threads, progress ------------------------------------------------------------------


def message(prompt: str) -> None:
    _fake.messages.append(prompt)


def alert(prompt: str) -> None:
    _fake.messages.append(prompt)


def ask(prompt: str) -> bool:
    _fake.asked.append(prompt)
    return _fake.ask_answer


def getFilename(
    message: str, pattern: str = "", default: str = "", favorites: str = "", type: str = "", multiple: bool = False
) -> _Optional[str]:
    return _fake.get_filename_answer


def executeInMainThread(call: _Callable[..., _Any], args: _Any = (), kwargs: _Any = None) -> None:
    _fake.main_thread_calls.append(_threading.current_thread().name)
    call(*tuple(args), **dict(kwargs or {}))


def executeInMainThreadWithResult(call: _Callable[..., _Any], args: _Any = (), kwargs: _Any = None) -> _Any:
    _fake.main_thread_calls.append(_threading.current_thread().name)
    return call(*tuple(args), **dict(kwargs or {}))


class ProgressTask:
    """Records every setProgress/setMessage; cancelled on request or after N updates."""

    def __init__(self, name: str = "") -> None:
        self.title = name
        self.progress: _List[int] = []
        self.messages: _List[str] = []
        with _fake.lock:
            _fake.progress_tasks.append(self)

    def setProgress(self, i: int) -> None:
        self.progress.append(int(i))

    def setMessage(self, s: str) -> None:
        self.messages.append(str(s))

    def isCancelled(self) -> bool:
        limit = _fake.cancel_after_updates
        return _fake.cancel_progress or (limit is not None and len(self.progress) >= limit)


# --- menus, paths, callbacks ---------------------------------------------------------------------


class MenuItem:
    def __init__(self, name: str, script: _Any = "", icon: str = "", tooltip: str = "") -> None:
        self._name, self._script, self._icon, self.tooltip_text = name, script, icon, tooltip

    def name(self) -> str:
        return self._name

    def script(self) -> str:
        return str(self._script)

    def icon(self) -> str:
        return self._icon


class Menu(MenuItem):
    """Records submenus and commands in order."""

    def __init__(self, name: str, icon: str = "", tooltip: str = "") -> None:
        super().__init__(name, "", icon, tooltip)
        self._items: _List[MenuItem] = []

    def addMenu(self, name: str, icon: str = "", tooltip: str = "", index: int = -1) -> Menu:
        sub = Menu(name, icon, tooltip)
        self._items.append(sub)
        return sub

    def addCommand(
        self, name: str, command: _Any = "", shortcut: str = "", icon: str = "", tooltip: str = "", **kwargs: _Any
    ) -> MenuItem:
        item = MenuItem(name, command, icon, tooltip)
        self._items.append(item)
        return item

    def addSeparator(self, **kwargs: _Any) -> MenuItem:
        item = MenuItem("-")
        self._items.append(item)
        return item

    def findItem(self, name: str) -> _Optional[MenuItem]:
        for item in self._items:
            if item.name() == name:
                return item
        return None

    def items(self) -> _List[MenuItem]:
        return list(self._items)


def menu(name: str) -> Menu:
    return _fake.menus.setdefault(name, Menu(name))


def toolbar(name: str, create: bool = True) -> Menu:
    return menu(name)


def pluginAddPath(args: str, addToSysPath: bool = True) -> None:
    import sys

    _fake.plugin_paths.insert(0, str(args))
    if addToSysPath and str(args) not in sys.path:
        sys.path.insert(0, str(args))


def pluginPath() -> _List[str]:
    return list(_fake.plugin_paths)


def _add_callback(kind: str, call: _Callable[..., _Any], nodeClass: str) -> None:
    _fake.callbacks.setdefault(kind, []).append((call, nodeClass))


def addKnobChanged(
    call: _Callable[..., _Any], args: _Any = (), kwargs: _Any = None, nodeClass: str = "*", node: _Any = None
) -> None:
    _add_callback("knobChanged", call, nodeClass)


def addOnCreate(call: _Callable[..., _Any], args: _Any = (), kwargs: _Any = None, nodeClass: str = "*") -> None:
    _add_callback("onCreate", call, nodeClass)


def addOnScriptLoad(call: _Callable[..., _Any], args: _Any = (), kwargs: _Any = None, nodeClass: str = "*") -> None:
    _add_callback("onScriptLoad", call, nodeClass)


# --- .nk copy and paste --------------------------------------------------------------------------


def nodeCopy(s: str) -> None:
    """Write the selected nodes as a minimal .nk (class, name and every knob value)."""
    lines = ["set cut_paste_input [stack 0]", "version 15.1 v3"]
    for node in selectedNodes():
        lines.append(f"{node.Class()} {{")
        lines.append(" inputs 0")
        for knob in node.allKnobs():
            if knob.name() != "selected":
                lines.append(f" {knob.name()} {knob.toScript()}")
        lines.append("}")
    _Path(s).write_text("\n".join(lines) + "\n", encoding="utf-8")
    _fake.copied.append(s)


def nodePaste(s: str) -> _Optional[Node]:
    """Run a clipboard .nk: nodes with their knobs, wired by the stack, selected afterwards."""
    text = _Path(s).read_text(encoding="utf-8")
    selected = selectedNodes()
    variables: _Dict[str, _Optional[Node]] = {"cut_paste_input": selected[0] if selected else None}
    stack: _List[_Optional[Node]] = [variables["cut_paste_input"]]
    made: _List[Node] = []
    for kind, head, body in _nk_statements(text):
        if kind == "set":
            variables[head] = stack[-1] if stack else None
        elif kind == "push":
            stack.append(None if head == "0" else variables.get(head.lstrip("$")))
        elif kind == "node":
            made.append(_paste_node(head, body, stack))
    for node in allNodes():
        node.setSelected(node in made)
    _fake.pasted.append(s)
    return made[-1] if made else None


def _paste_node(cls: str, knobs: _List[_Tuple[str, str]], stack: _List[_Optional[Node]]) -> Node:
    values = dict(knobs)
    if cls == "Root":  # like Nuke: pasting a Root changes the script's settings
        for name, value in knobs:
            knob = _root.knob(name)
            if knob is not None and name != "name":
                knob.fromScript(value)
        return _root
    node = _make(cls, {"name": _unquote(values.get("name", ""))})
    n_inputs = int(values.get("inputs", "1" if node.maxInputs() > 0 else "0"))
    upstream = [stack.pop() if stack else None for _ in range(n_inputs)]
    for index, source in enumerate(reversed(upstream)):
        if source is not None:
            node.setInput(index, source)
    for name, value in knobs:
        if name in ("name", "inputs"):
            continue
        knob = node.knob(name)
        if knob is None:
            knob = String_Knob(name)  # knobs the fake does not model are kept as text
            node.addKnob(knob)
        if isinstance(knob, (Int_Knob, Array_Knob)) and not isinstance(knob, Enumeration_Knob):
            try:
                knob.setValue(float(value))
            except ValueError:
                knob.fromScript(value)
        else:
            knob.fromScript(_unquote(value))
    stack.append(node)
    return node


def _nk_statements(text: str) -> _List[_Tuple[str, str, _List[_Tuple[str, str]]]]:
    """``(kind, head, knobs)`` per statement: set/push lines and node blocks with their knobs."""
    out: _List[_Tuple[str, str, _List[_Tuple[str, str]]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#") or line.startswith("version "):
            continue
        set_match = _re.match(r"^set (\w+) \[stack 0\]$", line)
        if set_match:
            out.append(("set", set_match.group(1), []))
            continue
        if line.startswith("push "):
            out.append(("push", line.split()[1], []))
            continue
        node_match = _re.match(r"^([A-Za-z_][\w.]*) \{$", line)
        if node_match is None:
            continue
        knobs: _List[_Tuple[str, str]] = []
        while i < len(lines):
            raw = lines[i]
            i += 1
            if raw.strip() == "}":
                break
            name, _, value = raw.strip().partition(" ")
            depth = _brace_depth(value)
            while depth > 0 and i < len(lines):
                value += "\n" + lines[i]
                depth += _brace_depth(lines[i])
                i += 1
            knobs.append((name, value))
        out.append(("node", node_match.group(1), knobs))
    return out


def _brace_depth(text: str) -> int:
    depth, quoted, escaped = 0, False, False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif not quoted and ch == "{":
            depth += 1
        elif not quoted and ch == "}":
            depth -= 1
    return depth


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value


def _script_word(value: _Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if text == "" or _re.search(r"\s", text):
        return '"' + text.replace('"', '\\"') + '"'
    return text
