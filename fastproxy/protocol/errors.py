"""Upstream ``error`` events (PROTOCOL.md §10.1-§10.3).

Processing order of §10.1: count; swallow active-response conflicts (T16); correlate by
``event_id`` with the event the proxy sent (§10.3); hold or forward the expected closures
(§10.2); forward everything else. An error never closes a leg by itself, except the rejection
of the client's Settings.
"""

from __future__ import annotations

from typing import Any

from fastproxy import messages as m
from fastproxy.protocol.client import ClientMessages
from fastproxy.protocol.sequencer import Update

CONFLICT = "conversation_already_has_active_response"
EXPECTED_CLOSURES = frozenset({"session_expired", "session_max_duration", "idle_timeout"})


class UpstreamErrors(ClientMessages):
    def close(self, client_code: int | None, client_reason: str, upstream_code: int | None) -> None:
        raise NotImplementedError  # pragma: no cover - provided by the lifecycle part

    def on_upstream_error(self, error: Any) -> None:
        s = self.s
        fields = error if isinstance(error, dict) else {}
        code = fields.get("code")
        code = code if isinstance(code, str) and code else "unknown"
        message = fields.get("message")
        message = self.redact(message) if isinstance(message, str) and message else "Unknown error"
        event_id = fields.get("event_id")
        s.stats.upstream_error(code)
        client_error = m.Error(description=message, code=code)
        if code == CONFLICT:
            self.log("info", "active response conflict swallowed", **{"error.code": code})
            self.t16_conflict(event_id)
            return
        sent = s.sent_events.get(event_id) if isinstance(event_id, str) else None
        if sent is not None and isinstance(event_id, str):
            self.on_own_event_error(sent.kind, sent.subject, event_id, client_error)
            return
        if code in EXPECTED_CLOSURES:
            self.log("info", "upstream announces the end of the session", **{"error.code": code})
            if s.active:
                s.held_closure = client_error
            else:
                self.send_client(client_error)
                s.expected_closure_sent = True
            return
        self.log("error", f"upstream error: {message}", **{"error.code": code})
        self.send_client(client_error)

    def flush_held_closure(self) -> None:
        """§10.2: the held expected-closure Error goes out once the slot is free."""
        s = self.s
        if s.held_closure is not None and not s.active:
            self.send_client(s.held_closure)
            s.held_closure = None
            s.expected_closure_sent = True

    def on_own_event_error(self, kind: str, subject: Any, event_id: str, error: m.Error) -> None:
        """§10.3: an error naming an event the proxy sent."""
        fields = {"error.code": error.code}
        if kind == "settings_update":
            self.log("error", f"Settings rejected by the upstream: {error.description}", **fields)
            self.send_client(error)
            self.close(1008, error.code, 1000)
        elif kind == "update":
            self.log("warning", f"session.update rejected: {error.description}", **fields)
            self.reject_update(event_id, subject)
            self.send_warning(error.code, error.description)
        elif kind == "context_item":
            self.log("warning", f"context item {subject} rejected: {error.description}", **fields)
            self.send_warning(error.code, error.description)
        elif kind == "item":
            self.log("error", f"item {subject} rejected: {error.description}", **fields)
            self.t17_item_failed(subject, error)
        elif kind == "response_create":
            self.log("error", f"response.create rejected: {error.description}", **fields)
            if not self.t17a_create_rejected(subject, error):
                self.send_client(error)
        else:
            self.log(
                "warning", f"upstream rejected the proxy's {kind}: {error.description}", **fields
            )

    def reject_update(self, event_id: str, entry: Update) -> None:
        s = self.s
        pending = next((p for p in s.pending_updates if p.event_id == event_id), None)
        if pending is None:
            return
        s.pending_updates.remove(pending)
        if entry.purpose == "prompt":
            s.prompt_updates = [(uid, t) for uid, t in s.prompt_updates if uid != entry.uid]
        elif entry.previous_voice is None:
            s.output_audio.pop("voice", None)
        else:
            s.output_audio["voice"] = entry.previous_voice
