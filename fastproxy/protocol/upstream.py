"""Upstream events (PROTOCOL.md §8.2), response records and agent signals (§8.3), extra events
(§8.4), the audio output path (§9.4) and barge-in truncation (§9.5).

Audio deltas normally bypass this module: the relay's fast path forwards the deltas of the one
(response, item) pair the Session *armed*. The first delta of every new pair, and any delta the
relay's scanner declined, arrive here; the Session then sends ``AgentStartedSpeaking`` if due,
forwards the audio through the relay's output converter, starts the playback record, and arms
the pair.
"""

from __future__ import annotations

import math
from typing import Any

from fastproxy import messages as m
from fastproxy.protocol.actions import ArmOutput, DropOutput, SendAudioToClient
from fastproxy.protocol.errors import UpstreamErrors
from fastproxy.protocol.state import Call, Playback, ResponseRecord

BARGE_IN_GRACE_MS = 500  # §9.5
TRANSCRIPTS_KEPT = 64  # input-transcription accumulators (§8.2 row 10)
EXCERPT_CHARS = 512


def _seconds(ms: float) -> float:
    return round(max(ms, 0.0) / 1000.0, 3)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class UpstreamEvents(UpstreamErrors):
    def on_session_updated(self) -> None:
        raise NotImplementedError  # pragma: no cover - provided by the lifecycle part (§3.5)

    # -- dispatch (§8.2) ----------------------------------------------------------------------

    def on_upstream_text(self, data: bytes) -> None:
        try:
            event = m.decode_upstream_event(data)
        except m.InvalidUpstreamJson:
            self.violation("invalid_upstream_json", f"{len(data)} bytes")
            return
        except m.MalformedUpstreamEvent as exc:
            if exc.type_name.startswith("response."):
                self.t18_response_event()
            self.violation("malformed_upstream_event", self.redact(str(exc))[:EXCERPT_CHARS])
            return
        except m.UnmappedUpstreamEvent as exc:
            excerpt = self.redact(data[:EXCERPT_CHARS].decode("utf-8", "replace"))
            self.log(
                "warning",
                f"unmapped upstream event {exc.type_name} ({len(data)} bytes): {excerpt}",
                direction="upstream_in",
                message_type=exc.type_name,
            )
            self.violation("unmapped_upstream_event", exc.type_name)
            return
        self.dispatch_upstream(event)

    def dispatch_upstream(self, ev: Any) -> None:
        s = self.s
        if isinstance(ev, m.AudioDelta):
            self.on_audio_delta(ev)
        elif isinstance(ev, m.TranscriptDelta | m.TextDelta):
            self.first_output(self.record_for(ev.response_id))
        elif isinstance(ev, m.ItemAdded | m.ItemCreated | m.ItemDone):
            self.t10_item_event(ev.item)
        elif isinstance(ev, m.ResponseCreated):
            self.t11_t12_response_created(ev.response.id)
        elif isinstance(ev, m.ResponseDone):
            self.on_response_done(ev.response.id, ev.response.status)
        elif isinstance(ev, m.TranscriptDone):
            self.rule_a(ev.response_id, ev.item_id, ev.transcript)
        elif isinstance(ev, m.TextDone):
            self.rule_a(ev.response_id, ev.item_id, ev.text)
        elif isinstance(ev, m.AudioDone):
            self.t18_response_event()
            self.audio_done(self.record_for(ev.response_id))
        elif isinstance(ev, m.FunctionCallArgumentsDone):
            self.t15_function_call(ev)
        elif isinstance(ev, m.OutputItemAdded):
            self.t18_response_event()
            self.on_output_item_added(ev.item)
        elif isinstance(ev, m.UpstreamError):
            self.on_upstream_error(ev.error)
        elif isinstance(ev, m.SessionUpdated):
            self.on_session_updated()
        elif isinstance(ev, m.SpeechStarted):
            self.on_speech_started()
        elif isinstance(ev, m.SpeechStopped):
            s.user_speaking = False
            s.last_turn_end = s.now
            self.utterance_end(ev.channel, ev.last_word_end)
        elif isinstance(ev, m.TimeoutTriggered):
            s.user_speaking = False
            s.last_turn_end = s.now
        elif isinstance(ev, m.BufferCommitted):
            s.user_speaking = False
        elif isinstance(ev, m.TranscriptionDelta):
            self.transcription_delta(ev.item_id, ev.delta)
        elif isinstance(ev, m.TranscriptionCompleted):
            self.transcription_completed(ev.item_id, ev.transcript)
        elif isinstance(ev, m.TranscriptionFailed):
            if isinstance(ev.item_id, str):
                s.transcripts.pop(ev.item_id, None)
            self.log("warning", "input audio transcription failed", message_type=m.event_type(ev))
        else:  # session.created (R1) and every class-L event
            if m.event_type(ev).startswith("response."):
                self.t18_response_event()
            self.log("debug", "upstream event logged only", message_type=m.event_type(ev))

    # -- response records (§8.3) -----------------------------------------------------------------

    def record_for(self, response_id: Any) -> ResponseRecord:
        """The record an event belongs to, creating an orphan record when needed (§8.3)."""
        s = self.s
        if isinstance(response_id, str):
            record = s.records.get(response_id)
            if record is None:
                record = ResponseRecord(epoch=0, kind="server", t0=s.now, response_id=response_id)
                self.remember(response_id, record)
            return record
        running = list(s.open_responses.values())
        if s.pending_create is not None:
            running.append(s.pending_create)
        if running:
            return s.epochs[max(running)]
        if s.shared_orphan is None:
            s.shared_orphan = ResponseRecord(epoch=0, kind="server", t0=s.now)
        return s.shared_orphan

    def first_output(self, record: ResponseRecord) -> None:
        self.t18_response_event()
        if record.t_first is None:
            record.t_first = self.s.now

    def audio_done(self, record: ResponseRecord) -> None:
        if not record.audio_done_sent:
            record.audio_done_sent = True
            self.send_client(m.AgentAudioDone())

    def on_response_done(self, response_id: str, status: Any) -> None:
        record = self.record_for(response_id)
        self.t18_response_event()
        self.audio_done(record)
        record.done = True
        self.t13_response_done(response_id, status)

    def rule_a(self, response_id: Any, item_id: Any, text: Any) -> None:
        """§8.2 rule A: one assistant ConversationText per item, none for scripted responses."""
        record = self.record_for(response_id)
        self.t18_response_event()
        if not isinstance(text, str) or not text.strip() or record.kind == "scripted":
            return
        if isinstance(item_id, str):
            if item_id in self.s.text_items:
                return
            self.s.text_items.add(item_id)
        self.send_text("assistant", text)

    def on_output_item_added(self, item: Any) -> None:
        if not isinstance(item, dict) or item.get("type") != "function_call":
            return
        item_id = item.get("id")
        if isinstance(item_id, str):
            if item_id in self.s.thinking_items:
                return
            self.s.thinking_items.add(item_id)
        self.send_client(m.AgentThinking())

    def t15_function_call(self, ev: m.FunctionCallArgumentsDone) -> None:
        call_id, name = ev.call_id, ev.name
        if not (
            isinstance(call_id, str) and call_id.strip() and isinstance(name, str) and name.strip()
        ):
            self.t18_response_event()
            self.violation("malformed_upstream_event", "function call without call_id or name")
            return
        record = self.record_for(ev.response_id)
        self.t18_response_event()
        if record.interrupted:
            return
        arguments = ev.arguments if isinstance(ev.arguments, str) else "{}"
        self.s.calls[call_id] = Call(epoch=record.epoch, name=name, arguments=arguments)
        item = m.FunctionCallRequestItem(id=call_id, name=name, arguments=arguments)
        self.send_client(m.FunctionCallRequest(functions=[item]))

    # -- audio output (§9.4) -----------------------------------------------------------------------

    def on_audio_delta(self, ev: m.AudioDelta) -> None:
        s = self.s
        response_id = ev.response_id if isinstance(ev.response_id, str) else None
        item_id = ev.item_id if isinstance(ev.item_id, str) else None
        record = self.record_for(response_id)
        self.first_output(record)
        if record.interrupted or not ev.delta:
            return
        if not record.speaking_sent:
            record.speaking_sent = True
            t_first = record.t_first if record.t_first is not None else s.now
            total = _seconds(s.now - record.t0)
            self.send_client(
                m.AgentStartedSpeaking(
                    total_latency=total,
                    tts_latency=_seconds(s.now - t_first),
                    ttt_latency=_seconds(t_first - record.t0),
                )
            )
            s.stats.response_latency(total)
        playback = s.playback
        if playback is None or (playback.response_id, playback.item_id) != (response_id, item_id):
            s.playback = Playback(response_id or "", item_id or "", s.now, s.client_audio_bytes)
        s.out.append(SendAudioToClient(ev.delta))
        if response_id is not None and item_id is not None and s.armed != (response_id, item_id):
            s.armed = (response_id, item_id)
            s.out.append(ArmOutput(response_id, item_id))

    # -- barge-in (§9.5) -------------------------------------------------------------------------

    def on_speech_started(self) -> None:
        s = self.s
        s.user_speaking = True
        self.send_client(m.UserStartedSpeaking())
        playback = s.playback
        if playback is None:
            return
        elapsed = s.now - playback.first_at
        sent_ms = (s.client_audio_bytes - playback.bytes_base) / s.output_format.bytes_per_ms
        if elapsed >= sent_ms + BARGE_IN_GRACE_MS:
            return
        audio_end_ms = math.floor(min(elapsed, sent_ms))
        record = self.record_for(playback.response_id or None)
        if not record.done and (s.options.turn_detection == "manual" or record.kind == "scripted"):
            cancel: dict[str, Any] = {"type": "response.cancel"}
            if playback.response_id:
                cancel["response_id"] = playback.response_id
            self.send_upstream(cancel, "cancel")
        if record.kind != "scripted" and playback.item_id:
            truncate = {
                "type": "conversation.item.truncate",
                "item_id": playback.item_id,
                "content_index": 0,
                "audio_end_ms": audio_end_ms,
            }
            self.send_upstream(truncate, "truncate")
        record.interrupted = True
        if playback.response_id:
            s.out.append(DropOutput(playback.response_id))
            if s.armed is not None and s.armed[0] == playback.response_id:
                s.armed = None
                s.out.append(ArmOutput(None, None))
        s.playback = None
        s.stats.barge_in()

    # -- input transcription and extras (§8.2 rows 10-12, 17; §8.4) -------------------------------

    def transcription_delta(self, item_id: str, delta: str) -> None:
        s = self.s
        text = s.transcripts.pop(item_id, "") + delta
        s.transcripts[item_id] = text
        if len(s.transcripts) > TRANSCRIPTS_KEPT:
            s.transcripts.pop(next(iter(s.transcripts)))
        if s.options.extra_events:
            self.send_client(transcript_message(text, final=False))

    def transcription_completed(self, item_id: Any, transcript: Any) -> None:
        s = self.s
        text = transcript if isinstance(transcript, str) else ""
        if s.options.extra_events:
            self.send_client(transcript_message(text, final=True))
        if text.strip():
            self.send_text("user", text)
        if isinstance(item_id, str):
            s.transcripts.pop(item_id, None)

    def utterance_end(self, channel: Any, last_word_end: Any) -> None:
        if not self.s.options.extra_events:
            return
        valid_channel = (
            isinstance(channel, list)
            and channel
            and all(isinstance(c, int) and not isinstance(c, bool) for c in channel)
        )
        self.send_client(
            m.UtteranceEnd(
                channel=channel if valid_channel else [0, 1],
                last_word_end=last_word_end if _is_number(last_word_end) else 0,
            )
        )


def transcript_message(text: str, *, final: bool) -> m.Transcript:
    return m.Transcript(
        transcript=text,
        is_final=final,
        speech_final=final,
        channel=0,
        channel_index=[0],
        start=0,
        duration=0,
        alternatives=[m.TranscriptAlternative(transcript=text)],
    )
