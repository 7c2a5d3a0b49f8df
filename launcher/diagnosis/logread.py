"""Reading a console log as structure: errors with their tracebacks, numbers and context.

A log from a user is a paste: colours, ``\\r`` progress bars, Docker and
journald prefixes, timestamps, GitHub quote marks, lines wrapped at 80
columns, paths in the wrong code page.  :func:`read` turns it into a
:class:`LogView`: every exception line (``OSError: [WinError 126] ...``)
becomes an :class:`Event` with the traceback frames above it and the link to
the exception it was raised from; every OS error number (``WinError``,
``Errno``, ``os error``) is collected whatever the language of the message
around it; and the facts the log states about itself (the Python version and
bits, the torch pins, the packages in the frames) are kept for the checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from launcher.diagnosis import mojibake

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\[\d+m(?=\w)")
# prefixes a line carries in front of the program's own output
_PREFIXES = (
    re.compile(r"^#\d+ \d+\.\d+ "),  # docker build
    re.compile(r"^[A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d \S+ [\w.@-]+\[\d+\]: "),  # journald
    re.compile(r"^\[?\d{4}-\d\d-\d\d[ T][\d:.,]+\]?(?: - \w+ - \w+ -| -)? ?"),  # timestamps
    re.compile(
        r"^(?:DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\s+(?=[\w.]*(?:Error|Exception)\b)"
    ),  # a level before an exception
    re.compile(r"^\d\d:\d\d:\d\d\.\d+ \w+ \S+ "),  # easydiffusion
    re.compile(r"^(?:> ?)+"),  # a quoted reply
    re.compile(r"^\[!\] ?"),  # ComfyUI-Manager's relay of an installer's output
)
_EXC = re.compile(r"(?:^|(?<=[\s\[(<'\"\u0080-\uffff]))(?P<type>(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Failure|Warning))"
                  r"(?::(?:\s(?P<msg>.*)|$)|$)")  # fmt: skip
_FRAME = re.compile(r'File "(?P<path>[^"]+)", line (?P<line>\d+)(?:, ?in (?P<func>\S+))?')
_NUMBER = re.compile(r"\[(?:WinError|Errno) (?P<a>-?\d+)\]|\(?os error (?P<b>-?\d+)\)?|\berror (?P<c>\d{3,5})\b",
                     re.IGNORECASE)  # fmt: skip
_PY_BANNER = re.compile(r"Python (?P<v>[23]\.\d+)\.\d+\S*.*?\[(?:MSC|GCC|Clang)[^\]]*?(?:(?P<bits>32|64) bit)?"
                        r"(?: \((?P<arch>Intel|AMD64|ARM64)\))?\]")  # fmt: skip
_PY_OTHER = re.compile(r"Python version: (?P<v>3\.\d+)|python(?P<p>3\.\d+)[\\/]|Python3(?P<w>\d\d)[\\/-]"
                       r"|cp3(?P<t>\d\d)-cp3\d\d|Using Python (?P<u>3\.\d+)"
                       r"|^Python (?P<b>3\.\d+)\.\d+\s*$", re.IGNORECASE | re.MULTILINE)  # fmt: skip  # last: `python --version`
_TORCH_PIN = re.compile(r"\btorch==(?P<v>\d+\.\d+)(?:\.\d+)?")
_PACKAGE = re.compile(r"(?:site|dist)-packages[\\/](?P<pkg>[A-Za-z_][\w]*)")
_ESCAPED = re.compile(r"\\r\\n|\\n|\\u([0-9a-fA-F]{4})")  # output pasted as a JSON/C# string: "...\r\n..."
_CHAIN = {"The above exception was the direct cause": "cause", "During handling of the above exception": "context"}
# uv (and other Rust tools) print an error as a chain of causes: "error: A" / "Caused by: B", or "× A" / "├─▶ B" / "╰─▶ C";
# a leading elapsed-time column ("320.0 ") from a build log may come first, and long causes wrap onto indented lines.
_RUST_HEAD = re.compile(r"^(?:\d+\.\d+\s+)?(?:error:|×)\s+(?P<msg>\S.*)")
_RUST_CAUSE = re.compile(r"(?:^|\s)(?:Caused by:|├─▶|╰─▶)\s+(?P<msg>\S.*)")
_RUST_WRAP = re.compile(r"^(?:│\s*)?\s{4,}(?P<msg>\S.*)")
RUST_ERROR = "uv"  # the type of an event read from such a chain


@dataclass
class Frame:
    path: str
    line: int
    func: str

    @property
    def package(self) -> str:
        m = _PACKAGE.search(self.path)
        return m.group("pkg") if m else ""


@dataclass
class Event:
    """One exception line, with the frames printed above it and what it was chained to."""

    type: str
    message: str
    lineno: int
    frames: list[Frame] = field(default_factory=list)
    link: str = ""  # "cause" | "context": how the previous event led to this one
    numbers: tuple[int, ...] = ()

    @property
    def short_type(self) -> str:
        return self.type.rsplit(".", 1)[-1]

    @property
    def packages(self) -> list[str]:
        return [f.package for f in self.frames if f.package]


@dataclass
class LogView:
    raw: str
    text: str  # cleaned, prefixes dropped, mojibake repaired
    lines: list[str]
    events: list[Event]
    numbers: set[int]
    repairs: list[mojibake.Repair]
    python: tuple[str, str] | None  # (version, bits) the log's own interpreter states
    pythons: set[str]  # every Python version the log mentions (banner, paths, wheel tags)
    torch_pins: list[str]  # the torch versions an install asked for ("2.1")
    trailing: list[Frame] = field(default_factory=list)  # frames after the last exception: a traceback cut short

    @property
    def final(self) -> Event | None:
        """The last exception of the log: usually the one that stopped it."""
        return self.events[-1] if self.events else None

    def frames(self) -> list[Frame]:
        return [f for e in self.events for f in e.frames] + self.trailing


def clean(text: str) -> str:
    """Drop colours, and keep only the last state of every ``\\r``-rewritten line."""
    text = _ANSI.sub("", text)
    return "\n".join(line.rsplit("\r", 1)[-1] if "\r" in line.rstrip("\r") else line.rstrip("\r")
                     for line in text.replace("\r\n", "\n").split("\n"))  # fmt: skip


def unescape(text: str) -> str:
    """Output that a launcher embedded in an error message as one escaped string, back as lines."""

    def fix(line: str) -> str:
        if line.count("\\n") < 2:
            return line
        return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)) if m.group(1) else "\n", line)

    return "\n".join(fix(line) for line in text.split("\n"))


def _strip(line: str) -> str:
    for prefix in _PREFIXES:
        line = prefix.sub("", line, count=1)
    return line


def _numbers(text: str) -> tuple[int, ...]:
    return tuple(int(next(g for g in m.groups() if g is not None)) for m in _NUMBER.finditer(text))


def _events(lines: list[str]) -> tuple[list[Event], list[Frame]]:
    events: list[Event] = []
    frames: list[Frame] = []
    link = ""
    for i, line in enumerate(lines):
        stripped = line.strip()
        for marker, kind in _CHAIN.items():
            if marker in stripped:
                link = kind
        fm = _FRAME.search(stripped)
        if fm:
            frames.append(Frame(fm.group("path"), int(fm.group("line")), fm.group("func") or ""))
            continue
        if stripped.startswith("Traceback (most recent call last)"):
            frames = []
            continue
        m = _EXC.search(stripped)
        if m is None or not (
            m.start() == 0
            or stripped[: m.start()].rstrip().endswith((":", "!!!", "[", "(", "<"))
            or not stripped[m.start() - 1].isascii()
        ):  # a user's words glued to the paste: "报错OSError: ..."
            continue
        message = (m.group("msg") or "").strip()
        if not message:  # "OSError:" with the message on the next line
            message = next((ln.strip() for ln in lines[i + 1 : i + 3] if ln.strip()), "")
        events.append(Event(m.group("type"), message, i, frames, link, _numbers(message)))
        frames, link = [], ""
    return events, frames


def _rust_chains(lines: list[str]) -> list[Event]:
    """uv's error chains as events, one per link, each linked to the one before as its cause."""
    chains: list[list[Event]] = []
    current: Event | None = None
    for i, line in enumerate(lines):
        stripped = line.strip()
        cause = _RUST_CAUSE.search(stripped)
        head = None if cause else _RUST_HEAD.match(stripped)
        if cause or head:
            m = cause or head
            assert m is not None
            current = Event(RUST_ERROR, m.group("msg").strip(), i, [], "cause" if cause else "")
            if head or not chains or chains[-1][-1].lineno < i - 1:
                chains.append([])
            chains[-1].append(current)
        elif current is not None and (wrap := _RUST_WRAP.match(line)) and not _FRAME.search(line):
            current.message = f"{current.message} {wrap.group('msg').strip()}"
        else:
            current = None
    # a lone "error: ..." line is not a chain (git, pip and others print those too); a cause always is
    events = [e for chain in chains if any(e.link for e in chain) for e in chain]
    for e in events:
        e.numbers = _numbers(e.message)
    return events


def _pythons(text: str) -> tuple[tuple[str, str] | None, set[str]]:
    banner = _PY_BANNER.search(text)
    found = {banner.group("v")} if banner else set()
    for m in _PY_OTHER.finditer(text):
        v = m.group("v") or m.group("p") or m.group("u") or m.group("b")
        if v is None:
            digits = m.group("w") or m.group("t")
            v = f"3.{digits}" if digits else None
        if v:
            found.add(v)
    if banner is None:
        return None, found
    bits = banner.group("bits") or ("32" if banner.group("arch") == "Intel" else "64")
    return (banner.group("v"), bits), found


def read(log: str) -> LogView:
    """The structure of ``log`` (any paste of console output)."""
    cleaned = unescape(clean(log))
    repairs = mojibake.find(cleaned)
    text = mojibake.repair(cleaned) if repairs else cleaned
    lines = [_strip(line) for line in text.split("\n")]
    text = "\n".join(lines)
    python, pythons = _pythons(text)
    events, trailing = _events(lines)
    events = sorted(events + _rust_chains(lines), key=lambda e: e.lineno)
    return LogView(log, text, lines, events, set(_numbers(text)), repairs, python, pythons,
                   [m.group("v") for m in _TORCH_PIN.finditer(text)], trailing)  # fmt: skip
