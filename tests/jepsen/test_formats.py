"""Readers for the fixture formats: Jepsen register logs and EDN key-value histories."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from jepsen_lite.formats import JEPSEN_LOG_KEY, Keyword, load, parse_edn, parse_edn_kv, parse_jepsen_log
from jepsen_lite.history import HistoryError
from jepsen_lite.models import KVAppendModel, RegisterModel


def test_edn_reader_handles_the_subset_the_fixtures_use() -> None:
    """Maps, vectors, strings with escapes, keywords, numbers, nil and booleans parse to Python values."""
    value = parse_edn('{:process 0, :type :ok, :value [1 "a \\"b\\"" nil true -2.5], :key "0"}')
    assert value == {"process": 0, "type": "ok", "value": [1, 'a "b"', None, True, -2.5], "key": "0"}
    assert isinstance(value, dict) and isinstance(value["type"], Keyword)


@pytest.mark.parametrize("text", ["{:a 1", "[1 2", "{:a}", "}", "1 2", "#{1}", ""])
def test_edn_reader_rejects_broken_input(text: str) -> None:
    """Unclosed, odd or unsupported forms are ValueErrors, not silent garbage."""
    with pytest.raises(ValueError):
        parse_edn(text)


def test_jepsen_log_failed_cas_is_a_refusal_and_info_stays_open() -> None:
    """:fail :cas becomes an ok cas refused (output False); :info leaves the op open; other lines are ignored."""
    history = parse_jepsen_log(
        [
            "2017-01-01 INFO  jepsen.core - Running test",
            "INFO  jepsen.util - 1\t:invoke\t:cas\t[1 4]",
            "INFO  jepsen.util - 2\t:invoke\t:write\t3",
            "INFO  jepsen.util - 1\t:fail\t:cas\t[1 4]",
            "INFO  jepsen.util - 2\t:info\t:write\t:timed-out",
            "INFO  jepsen.util - 0\t:invoke\t:read\tnil",
            "INFO  jepsen.util - 0\t:ok\t:read\t3",
        ]
    )
    cas, write, read = history.operations
    assert (cas.f, cas.status, cas.value, cas.output) == ("cas", "ok", [1, 4], False)
    assert (write.status, write.value, math.isinf(write.return_time)) == ("info", 3, True)
    assert (read.output, read.key) == (3, JEPSEN_LOG_KEY)


def test_jepsen_log_without_operation_lines_is_malformed() -> None:
    """A file with no Jepsen operation line is an error, not an empty (trivially linearizable) history."""
    with pytest.raises(HistoryError, match="no Jepsen operation lines"):
        parse_jepsen_log(["hello", "world"])


def test_jepsen_log_with_a_bad_value_names_the_line() -> None:
    """An operation line whose value cannot be read is reported with its line number."""
    with pytest.raises(HistoryError, match="line 2"):
        parse_jepsen_log(["INFO  jepsen.util - 1\t:invoke\t:write\t3", "INFO  jepsen.util - 1\t:ok\t:write\t[3"])


def test_edn_kv_lines_become_operations_per_key() -> None:
    """EDN map lines pair by process into get/put/append operations with string keys."""
    history = parse_edn_kv(
        [
            '{:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}',
            '{:process 1, :type :invoke, :f :get, :key "0", :value nil}',
            '{:process 0, :type :ok, :f :append, :key "0", :value "x 0 0 y"}',
            '{:process 1, :type :ok, :f :get, :key "0", :value "x 0 0 y"}',
        ]
    )
    assert [(op.f, op.key, op.value, op.output) for op in history.operations] == [
        ("append", "0", "x 0 0 y", "x 0 0 y"),
        ("get", "0", None, "x 0 0 y"),
    ]


@pytest.mark.parametrize(
    "line", ["not edn at all {", "[1 2 3]", "{:process 0, :type :invoke}", "{:process x, :type :ok, :f :get}"]
)
def test_edn_kv_rejects_lines_that_are_not_operation_maps(line: str) -> None:
    """Each kind of bad line is a HistoryError with line 1."""
    with pytest.raises(HistoryError, match="line 1"):
        parse_edn_kv([line])


def test_load_picks_the_model_for_each_format(tmp_path: Path) -> None:
    """Registers for jepsen-log and jsonl (append strings if only get/put/append), append strings for edn-kv."""
    log = tmp_path / "h.log"
    log.write_text("INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:read\tnil\n")
    edn = tmp_path / "h.txt"
    edn.write_text('{:process 0, :type :invoke, :f :get, :key "a", :value nil}\n')
    jsonl = tmp_path / "h.jsonl"
    jsonl.write_text("")
    assert isinstance(load(log, "jepsen-log")[1], RegisterModel)
    assert isinstance(load(edn, "edn-kv")[1], KVAppendModel)
    assert isinstance(load(jsonl, "jsonl")[1], RegisterModel)
    jsonl.write_text(
        '{"index": 0, "time": 0, "process": 0, "type": "invoke", "f": "append", "key": "k", "value": "a"}\n'
        '{"index": 1, "time": 1, "process": 1, "type": "invoke", "f": "add", "key": "s", "value": 1}\n'
    )
    assert isinstance(load(jsonl, "jsonl")[1], KVAppendModel)
    with pytest.raises(HistoryError, match="unknown format"):
        load(jsonl, "csv")
