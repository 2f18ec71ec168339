"""The operator settings a Session needs (a subset of Appendix B), validated by fastproxy.config."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SessionOptions:
    turn_detection: str = "server_vad"  # server_vad | semantic_vad | manual (§4.5)
    greeting: str = "text"  # text | spoken | off (§5.2)
    extra_events: bool = True  # Transcript / UtteranceEnd (§8.4)
    transcription_model: str = "gpt-4o-transcribe"
    transcription_language: str = "en"
    ready_timeout_ms: int = 15000  # §3.5 R6
    sequencer_timeout_ms: int = 20000  # §6.7
    queue_max_messages: int = 2048  # §3.4
    queue_max_bytes: int = 4194304  # §3.4
    # Strings replaced by "[redacted]" in any upstream text that is logged or forwarded (§11.5):
    # the API key and every configured client token.
    secrets: tuple[str, ...] = ()
