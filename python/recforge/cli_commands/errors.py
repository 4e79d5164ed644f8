"""User mistakes become one line on stderr and a non-zero exit status, never a traceback."""
from __future__ import annotations

import functools
import os
import sys
from typing import Callable

from recforge.backend import BackendUnavailableError
from recforge.data.errors import DatasetNotFoundError

#: exit status for a user mistake (unknown name, missing file or extra)
USER_ERROR = 1


class UserError(Exception):
    """A mistake the user can fix; the message says how."""


def missing_extra(library: str, extra: str, purpose: str) -> UserError:
    return UserError(f"{purpose} needs {library}: pip install \"recforge[{extra}]\"")


def report_user_errors(command: Callable) -> Callable:
    """Run ``command``; user mistakes print ``recforge <name>: error: ...`` and exit 1.

    ValueErrors from the library (bad data, impossible settings) count as user mistakes too;
    ``RECFORGE_DEBUG=1`` shows their traceback.
    """

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (UserError, DatasetNotFoundError, BackendUnavailableError, ImportError, ValueError) as exc:
            if os.environ.get("RECFORGE_DEBUG"):
                raise
            name = command.__name__.replace("_command", "")
            message = " ".join(str(exc).split()) or type(exc).__name__
            print(f"recforge {name}: error: {message}", file=sys.stderr)
            raise SystemExit(USER_ERROR) from None

    return wrapper
