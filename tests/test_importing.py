"""Importing on demand: optional drivers are imported only when a URL chooses them, and a
missing one is a ``ConfigurationError`` naming the extra to install (``load_app`` is tested
with the CLI, in ``test_registry.py``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from qakeapi._importing import require_extra
from qakeapi.exceptions import ConfigurationError


def test_a_missing_driver_names_its_extra() -> None:
    with pytest.raises(ConfigurationError) as info:
        require_extra("qakeapi_no_such_driver", "nosuch", "this URL needs a driver")
    assert str(info.value) == 'this URL needs a driver: pip install "qakeapi[nosuch]"'
    assert isinstance(info.value.__cause__, ImportError)


def test_an_installed_driver_passes() -> None:
    require_extra("sqlite3", "sqlite", "unused")


def test_without_the_redis_driver_redis_urls_say_what_to_install() -> None:
    """In a process where ``import redis`` fails as it does when the extra is not installed:
    the app, a SQLite queue and SQLite rate limits work, and a Redis URL is refused with the
    install hint, for the queue and for the rate limits alike."""
    script = textwrap.dedent('''
        import sys
        sys.modules["redis"] = None  # what `import redis` meets without qakeapi[redis]

        from qakeapi import QakeAPI
        from qakeapi._ratelimit_storage import open_counters
        from qakeapi.exceptions import ConfigurationError
        from qakeapi.queued_tasks.backends import open_storage

        QakeAPI()
        open_storage("sqlite:///unused.db")
        open_counters("sqlite:///unused.db")
        for opener in (open_storage, open_counters):
            try:
                opener("redis://127.0.0.1:6379/0")
            except ConfigurationError as exc:
                print(exc)
    ''')
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "QUEUE_URL 'redis://127.0.0.1:6379/0' needs the Redis driver: "
        'pip install "qakeapi[redis]"',
        "rate limits in 'redis://127.0.0.1:6379/0' need the Redis driver: "
        'pip install "qakeapi[redis]"',
    ]
