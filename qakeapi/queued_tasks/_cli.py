"""``qakeapi queue ...``: run workers and look at the queue.

Every command finds the queue from ``--app module:app`` (the app's queue settings) or
``--url`` (else ``QUEUE_URL``). Tables are for people; ``--json`` prints data for scripts.
"""

from __future__ import annotations

import click

from ._cli_status import status
from ._cli_tasks import TASK_COMMANDS
from ._cli_worker import start

__all__ = ["queue"]


@click.group()
def queue() -> None:
    """Run queued-task workers and inspect the queue."""


for _command in (start, status, *TASK_COMMANDS):
    queue.add_command(_command)
