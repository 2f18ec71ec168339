"""PROTOCOL.md §13.11 (errors), P-108 ... P-110, at the Session level.
All of them are expressible with the sans-I/O Session.

After the scenarios: rules of §10 that no scenario states on its own (``test_rule_*``).
"""

from __future__ import annotations

import pytest

from fastproxy.protocol import events as E

try:
    from tests.unit import harness as H
except ImportError:  # pragma: no cover
    import harness as H  # type: ignore[no-redef]


def test_p108_mapping_by_code() -> None:
    h = H.ready_harness()
    h.upstream(
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": "rate_limit_exceeded",
                "message": "Rate limit exceeded",
            },
        }
    )
    msg = "The server had an error while processing your request. Sorry about that!"
    h.upstream(
        {"type": "error", "error": {"type": "server_error", "code": "server_error", "message": msg}}
    )
    h.upstream({"type": "error"})
    assert h.client_json() == [
        {"type": "Error", "description": "Rate limit exceeded", "code": "rate_limit_exceeded"},
        {"type": "Error", "description": msg, "code": "server_error"},
        {"type": "Error", "description": "Unknown error", "code": "unknown"},
    ]
    assert h.client_close is None and h.upstream_close is None
    assert dict(+h.stats.upstream_errors) == {
        "rate_limit_exceeded": 1,
        "server_error": 1,
        "unknown": 1,
    }


@pytest.mark.parametrize("code", ["session_max_duration", "session_expired", "idle_timeout"])
def test_p109_expected_closures(code: str) -> None:
    h = H.ready_harness()
    message = "Your session hit the maximum duration of 60 minutes."
    h.upstream(
        {
            "type": "error",
            "error": {"type": "invalid_request_error", "code": code, "message": message},
        }
    )
    assert h.client_json() == [{"type": "Error", "description": message, "code": code}]
    h.event(E.UpstreamClosed(1011, ""))
    assert h.client_close is not None and h.client_close[0] == 1000
    assert h.errors("upstream_closed") == []
    assert h.client_types() == ["Error"]


def test_p110_idle_timeout_during_a_response_is_held() -> None:
    h = H.ready_harness()
    h.upstream(H.response_created("resp_1"))
    s = h.upstream(
        {
            "type": "error",
            "error": {"code": "idle_timeout", "message": "Session closed due to idle timeout"},
        }
    )
    assert s.client == []
    h.upstream(H.text_done("resp_1", "item_a1", "Goodbye."))
    h.upstream(H.response_done("resp_1"))
    assert h.client_json() == [
        {"type": "ConversationText", "role": "assistant", "content": "Goodbye."},
        {"type": "History", "role": "assistant", "content": "Goodbye."},
        {"type": "AgentAudioDone"},
        {
            "type": "Error",
            "description": "Session closed due to idle timeout",
            "code": "idle_timeout",
        },
    ]


# ---------------------------------------------------------------------------------------------
# §10 rules without a scenario of their own


@pytest.mark.parametrize("code", ["session_expired", "idle_timeout"])
def test_rule_held_expected_closure_is_released_by_the_upstream_close(code: str) -> None:
    """§10.2: a held expected-closure Error is sent "when the slot is free again ... or when the
    upstream closes, whichever comes first"; "once one has been sent, the upstream's close is
    treated as normal: client close 1000 and no upstream_closed" (also §3.6, row 6)."""
    h = H.ready_harness()
    h.upstream(H.response_created("resp_1"))
    h.upstream({"type": "error", "error": {"code": code, "message": "Bye."}})
    assert h.to_client == []  # held: a response is active
    h.event(E.UpstreamClosed(1011, ""))
    assert h.client_json() == [{"type": "Error", "description": "Bye.", "code": code}]
    assert h.client_close is not None and h.client_close[0] == 1000
