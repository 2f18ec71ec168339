"""PROTOCOL.md §13.12 (security and limits), P-111 ... P-115, at the Session level.

Needs sockets (covered by tests/conformance):

- P-111 client authentication: headers, subprotocol selection and 401/101 are the upgrade's.
- P-112 the ``Origin`` allowlist: 403/101 at the upgrade.
- P-113 ``max_sessions``/``max_sessions_per_address``: 503/429 counted by the server.
- P-115 (in part) the real log records and the ``Authorization``/subprotocol headers; here only
  the client-visible redaction and the Session's own ``Log`` actions are checked.
"""

from __future__ import annotations

try:
    from tests.unit import harness as H
except ImportError:  # pragma: no cover
    import harness as H  # type: ignore[no-redef]


def test_p114_held_queue_overflow() -> None:
    h = H.Harness(queue_max_messages=10)
    h.start()
    h.open_upstream()
    h.client(H.S0)
    for k in range(10):
        h.client_audio(H.A_bytes(960, 960 * k))
    assert h.client_types() == ["Welcome"]
    assert h.client_close is None
    h.client_audio(H.A_bytes(960, 9600))
    errs = h.client_json("Error")
    assert len(errs) == 1 and errs[0]["code"] == "client_queue_overflow"
    assert h.client_close == (1008, "client_queue_overflow")
    assert h.upstream_close is not None and h.upstream_close[0] == 1000
    assert h.count_up("input_audio_buffer.append") == 0
    assert h.upstream_types() == ["session.update"]


def test_p115_secrets() -> None:
    secrets = ("sk-test-SECRET", "tok-SECRET")
    h = H.Harness(secrets=secrets).ready(clear=False)
    h.upstream(
        {
            "type": "error",
            "error": {
                "code": "invalid_api_key",
                "message": "Incorrect API key provided: sk-test-SECRET",
            },
        }
    )
    assert h.client_json("Error") == [
        {
            "type": "Error",
            "description": "Incorrect API key provided: [redacted]",
            "code": "invalid_api_key",
        }
    ]
    for log in h.logs:
        text = log.message + " " + " ".join(f"{k}={v}" for k, v in log.fields)
        for s in secrets:
            assert s not in text, log
    for _kind, payload in h.all_client:
        assert "SECRET" not in str(payload)
