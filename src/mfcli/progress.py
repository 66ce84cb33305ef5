"""Whether to draw progress bars: on a terminal, unless the user asked for quiet (`mfcli --quiet CMD`, or
MFCLI_QUIET=1). A leaf, so every layer asks the same question the same way."""

from __future__ import annotations

import os
import sys


def show_progress() -> bool:
    return sys.stderr.isatty() and os.environ.get("MFCLI_QUIET", "") in ("", "0")
