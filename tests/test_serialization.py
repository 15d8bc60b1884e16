"""Task arguments and results as JSON: the extra types come back as themselves, anything
else is refused with the path of the bad value (qakeapi.queued_tasks._serialization)."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid

import pytest

from qakeapi.constants import MAX_JSON_DEPTH
from qakeapi.exceptions import SerializationError
from qakeapi.queued_tasks._serialization import decode, dumps, encode, encode_call, loads


def roundtrip(value: object) -> object:
    return decode(loads(dumps(encode(value))))


@pytest.mark.parametrize("value", [
    dt.datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    dt.datetime(2026, 1, 2, 3, 4, 5),
    dt.date(2026, 1, 2),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    decimal.Decimal("-12.3400"),
    b"\x00\xff\x80",
    {"nested": [{"when": dt.date(2020, 2, 29)}, [b"x", None, True, 1.5, "é"]]},
])
def test_extra_types_come_back_as_the_same_type(value: object) -> None:
    back = roundtrip(value)
    assert back == value and type(back) is type(value)


def test_byte_views_and_tuples_come_back_as_bytes_and_lists() -> None:
    assert roundtrip([bytearray(b"ab"), memoryview(b"cd"), (1, (2,))]) == [b"ab", b"cd", [1, [2]]]


def test_encoded_data_is_plain_json() -> None:
    data = encode({"d": dt.date(2026, 1, 2), "n": decimal.Decimal("1.10")})
    assert json.loads(json.dumps(data)) == {"d": {"__qk__": "date", "v": "2026-01-02"},
                                            "n": {"__qk__": "decimal", "v": "1.10"}}


@pytest.mark.parametrize(("value", "message"), [
    ({"a": [1, float("nan")]}, r"value\['a'\]\[1\]: NaN can't be stored"),
    ({"ok": {2: "x"}}, r"value\['ok'\]: dict key 2 is a int"),
    ({"__qk__": "date", "v": "2026-01-02"}, "the key '__qk__' is reserved"),
    ([{1, 2}], r"value\[0\]: a builtins.set can't be stored"),
    (object(), "builtins.object can't be stored"),
])
def test_values_json_can_not_hold_are_refused_naming_their_path(value: object,
                                                                message: str) -> None:
    with pytest.raises(SerializationError, match=message):
        encode(value)


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    deep: list[object] = []
    inner = deep
    for _ in range(MAX_JSON_DEPTH - 1):
        inner.append([])
        inner = inner[0]  # type: ignore[assignment]
    assert roundtrip(deep) == deep
    inner.append([])
    with pytest.raises(SerializationError, match=f"more than {MAX_JSON_DEPTH} levels deep"):
        encode(deep)


def test_call_arguments_are_named_in_errors() -> None:
    args, kwargs = encode_call("send", [dt.date(2026, 1, 1)], {"to": uuid.UUID(int=1)})
    assert decode(args) == [dt.date(2026, 1, 1)] and decode(kwargs) == {"to": uuid.UUID(int=1)}
    with pytest.raises(SerializationError, match="positional argument 1 of send"):
        encode_call("send", [1, object()], {})
    with pytest.raises(SerializationError, match=r"argument 'to' of send\[0\]"):
        encode_call("send", [], {"to": [object()]})


def test_unknown_tag_is_an_error_not_a_silent_dict() -> None:
    with pytest.raises(ValueError, match="unknown tagged value 'pickle'"):
        decode([{"__qk__": "pickle", "v": "gASV"}])
