"""Ctrl-C during training: finish the step, then stop with a consistent checkpoint.

A KeyboardInterrupt raised at an arbitrary point can land between `optimizer.step()` and the step
counter, and a checkpoint written then resumes one step off. So the first SIGINT only asks the loop
to stop at the next step boundary; a second one interrupts at once (nothing new is saved then).
"""

from __future__ import annotations

import signal
import threading


class DeferredInterrupt:
    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:  # asked twice: the user wants out now
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "DeferredInterrupt":
        # signals reach the main thread only; an ignored SIGINT (a job a shell started in the background)
        # stays ignored, as Python itself leaves it
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        if self.requested and exc_type is None:
            # the request came after the loop's last check (during its last save, say): the run is
            # complete and saved, so stop now rather than lose the Ctrl-C
            raise KeyboardInterrupt
