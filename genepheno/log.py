"""Logging and progress on stderr, quietened by ``-q`` and detailed by ``-v``."""

import logging
import sys

from tqdm.auto import tqdm

logger = logging.getLogger("genepheno")
_state = {"quiet": False}


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is now (test runners and wrappers swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def setup(verbosity=0):
    """verbosity: -1 quiet (warnings only), 0 info, 1+ debug."""
    _state["quiet"] = verbosity < 0
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    logger.setLevel(level)
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("genepheno: %(message)s"))
        logger.addHandler(handler)
    logger.propagate = False


def progress(iterable=None, total=None, desc=None, unit="it", **kw):
    """A progress bar on stderr; on a non-terminal it prints a line at most every 30 s."""
    tty = sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr,
                disable=_state["quiet"], mininterval=0.5 if tty else 30, dynamic_ncols=tty,
                ascii=not tty, leave=True, **kw)  # leave: the last state ends with a newline in log files
