"""Named defaults (qakeapi.constants): every environment variable the code reads is one
constant, documented in docs/configuration.md with the default the code really uses."""

from __future__ import annotations

import re
from pathlib import Path

from qakeapi import QueueSettings, constants

CONFIGURATION = Path(__file__).parent.parent / "docs" / "configuration.md"
ROW = re.compile(r"^\| `([A-Z_]+)` \| `([^`]*)` \|", re.MULTILINE)
VARIABLES = {getattr(constants, name) for name in constants.__all__ if name.startswith("ENV_")}


def documented() -> dict[str, str]:
    return dict(ROW.findall(CONFIGURATION.read_text()))


def test_every_variable_is_documented_and_every_documented_one_is_read() -> None:
    assert len(VARIABLES) == len([n for n in constants.__all__ if n.startswith("ENV_")])
    assert set(documented()) == VARIABLES


def test_documented_queue_defaults_are_the_real_ones() -> None:
    settings = QueueSettings.from_env({})
    for variable, default in documented().items():
        if not variable.startswith("QUEUE_"):
            continue
        value = getattr(settings, variable.removeprefix("QUEUE_").lower())
        if isinstance(value, bool):
            assert default == str(int(value)), variable
        elif isinstance(value, float):
            assert float(default) == value, variable
        else:
            assert default == str(value), variable


def test_documented_http_defaults_are_the_real_ones() -> None:
    docs = documented()
    assert int(docs[constants.ENV_MAX_BODY_SIZE]) == constants.DEFAULT_MAX_BODY_SIZE
    assert float(docs[constants.ENV_BODY_TIMEOUT]) == constants.DEFAULT_BODY_TIMEOUT
    assert float(docs[constants.ENV_HEADER_TIMEOUT]) == constants.SERVER_HEADER_TIMEOUT
