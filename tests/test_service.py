"""The KV service shell, in process: validation, error mapping, graceful refusal."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore import errors
from kvstore.server.memory_store import TemporaryMemoryStore
from kvstore.server.service import KVService, NodeStatus, StandaloneBackend
from kvstore.trace import MemoryTracer
from kvstore.wire import kv_pb2


def make_service(backend: StandaloneBackend | None = None) -> tuple[KVService, list[float]]:
    stops: list[float] = []
    svc = KVService(
        backend or StandaloneBackend(node_id="n1", shard="s0"),
        on_shutdown=stops.append,
        tracer=MemoryTracer(),
        clock=lambda: 0.0,
    )
    return svc, stops


def test_a_shutting_down_service_refuses_new_requests_definitely() -> None:
    """After shutdown begins, writes get SHUTTING_DOWN (definite) and are not applied."""
    svc, stops = make_service()

    async def run() -> None:
        await svc.Shutdown(kv_pb2.ShutdownRequest(grace_seconds=2.0), None)  # type: ignore[arg-type]
        resp = await svc.Put(kv_pb2.PutRequest(key=b"a", value=b"1"), None)  # type: ignore[arg-type]
        assert resp.error.code == kv_pb2.SHUTTING_DOWN and resp.error.definite
        status = await svc.Status(kv_pb2.StatusRequest(), None)  # type: ignore[arg-type]
        assert status.keys == 0

    asyncio.run(run())
    assert stops == [2.0]


class ExplodingBackend(StandaloneBackend):
    async def get(self, key: bytes, *, stale: bool) -> bytes | None:
        raise ZeroDivisionError("boom")

    async def put(self, key: bytes, value: bytes, *, client_id: int, seq: int) -> bytes | None:
        raise errors.NotLeaderError("127.0.0.1:9")

    def status(self) -> NodeStatus:
        return NodeStatus("n1", "s0", "follower")


def test_backend_errors_become_typed_replies_and_bugs_become_indeterminate_errors() -> None:
    """A KVError keeps its code and hint; an unexpected exception never reaches gRPC raw."""
    svc, _ = make_service(ExplodingBackend(node_id="n1", shard="s0"))

    async def run() -> None:
        put = await svc.Put(kv_pb2.PutRequest(key=b"a", value=b"1"), None)  # type: ignore[arg-type]
        assert (put.error.code, put.error.leader_hint) == (kv_pb2.NOT_LEADER, "127.0.0.1:9")
        get = await svc.Get(kv_pb2.GetRequest(key=b"a"), None)  # type: ignore[arg-type]
        assert get.error.code == kv_pb2.OUTCOME_UNKNOWN and not get.error.definite
        assert "ZeroDivisionError" in get.error.message

    asyncio.run(run())
    assert svc.in_flight == 0


def test_scan_reply_is_paged_by_limit_with_a_more_flag() -> None:
    """A scan returns at most `limit` pairs and says when more remain."""
    backend = StandaloneBackend(node_id="n1", shard="s0")
    for i in range(10):
        backend.store.put(b"k%d" % i, b"v")
    svc, _ = make_service(backend)

    async def run() -> None:
        resp = await svc.Scan(kv_pb2.ScanRequest(limit=3), None)  # type: ignore[arg-type]
        assert [p.key for p in resp.pairs] == [b"k0", b"k1", b"k2"] and resp.more
        resp = await svc.Scan(kv_pb2.ScanRequest(start=b"k7"), None)  # type: ignore[arg-type]
        assert [p.key for p in resp.pairs] == [b"k7", b"k8", b"k9"] and not resp.more
        resp = await svc.Scan(kv_pb2.ScanRequest(limit=20_000), None)  # type: ignore[arg-type]
        assert resp.error.code == kv_pb2.LIMIT_EXCEEDED

    asyncio.run(run())


keys = st.binary(min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["put", "delete", "cas"]), keys, st.binary(max_size=3)), max_size=60), keys, keys
)
def test_temporary_store_matches_a_dict_model(ops, lo, hi) -> None:  # type: ignore[no-untyped-def]
    """Every operation's result and every scan agree with a plain dict."""
    store, model = TemporaryMemoryStore(), {}
    for op, k, v in ops:
        if op == "put":
            assert store.put(k, v) == model.get(k)
            model[k] = v
        elif op == "delete":
            assert store.delete(k) == (k in model)
            model.pop(k, None)
        else:
            r = store.cas(k, v or None, b"new")
            assert r.current == model.get(k)
            if model.get(k) == (v or None):
                model[k] = b"new"
        store.check_invariants()
    expected = sorted((k, v) for k, v in model.items() if lo <= k < hi)
    assert list(store.scan(lo, hi)) == expected
    assert list(store.scan(lo, hi, reverse=True, limit=2)) == expected[::-1][:2]
