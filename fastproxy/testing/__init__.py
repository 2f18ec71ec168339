"""Test support shipped with fastproxy: the mock OpenAI Realtime upstream.

See :mod:`fastproxy.testing.mock_upstream` (server and scripting API),
:mod:`fastproxy.testing.events` (event builders), :mod:`fastproxy.testing.scripts` (reply specs)
and :mod:`fastproxy.testing.speech` (synthetic speech and the energy VAD).
"""

from .mock_upstream import (
    AudioReply,
    ConfirmItem,
    CustomReply,
    ErrorReply,
    FunctionCallReply,
    IgnoreItem,
    MockBehaviour,
    MockConnection,
    MockHookError,
    MockUpstream,
    NoReply,
    Pause,
    Received,
    RejectItem,
    ReplyContext,
    TextReply,
    confirm_after,
    confirm_only,
    events,
    run_mock_upstream,
    serve_mock_upstream,
)

__all__ = [
    "AudioReply",
    "ConfirmItem",
    "CustomReply",
    "ErrorReply",
    "FunctionCallReply",
    "IgnoreItem",
    "MockBehaviour",
    "MockConnection",
    "MockHookError",
    "MockUpstream",
    "NoReply",
    "Pause",
    "Received",
    "RejectItem",
    "ReplyContext",
    "TextReply",
    "confirm_after",
    "confirm_only",
    "events",
    "run_mock_upstream",
    "serve_mock_upstream",
]
