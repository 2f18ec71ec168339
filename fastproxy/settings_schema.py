"""msgspec Structs describing the Deepgram ``Settings`` message (PROTOCOL.md §4, §5).

These types are deliberately *tolerant*: every leaf is ``Any`` with an ``UNSET`` default and
unknown keys are ignored (J5), so a wrongly typed field never fails the whole message. §4.1 says
such a field is "treated as absent and noted"; that judgement needs the field's path, so it is
made by ``fastproxy.protocol.settings_map``, which converts each nested object to its Struct only
when it reads it. ``UNSET`` means the key was absent; ``None`` means JSON ``null`` (J3).

Only the fields the proxy reads are declared. Everything else of the Deepgram message
(``tags``, ``experimental``, ``mip_opt_out``, ``agent.listen``, ``agent.language``,
``think.endpoint``, ``provider.temperature`` ...) is never sent upstream (§4.3) and so is simply
not part of the schema.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET

__all__ = [
    "Agent",
    "Audio",
    "AudioInput",
    "AudioOutput",
    "Context",
    "Flags",
    "FunctionCallEntry",
    "FunctionDefinition",
    "HistoryEntry",
    "ManagedPrompt",
    "SessionAudioOutput",
    "Settings",
    "Speak",
    "SpeakProvider",
    "Think",
    "ThinkProvider",
    "VoiceRef",
]


class _Tolerant(msgspec.Struct, kw_only=True):
    """Base: keyword-only; unknown fields are ignored (msgspec's default)."""


# --- audio (§4.4) ---------------------------------------------------------------------------


class AudioInput(_Tolerant):
    encoding: Any = UNSET
    sample_rate: Any = UNSET


class AudioOutput(_Tolerant):
    encoding: Any = UNSET
    sample_rate: Any = UNSET
    container: Any = UNSET  # absent or "none"; anything else is unsupported (§4.4)


class Audio(_Tolerant):
    input: Any = UNSET  # AudioInput
    output: Any = UNSET  # AudioOutput


# --- agent.think (§4.2) ---------------------------------------------------------------------


class ThinkProvider(_Tolerant):
    model: Any = UNSET


class FunctionDefinition(_Tolerant):
    name: Any = UNSET
    description: Any = UNSET
    parameters: Any = UNSET


class ManagedPrompt(_Tolerant):
    id: Any = UNSET
    version: Any = UNSET
    variables: Any = UNSET


class Think(_Tolerant, rename="camel"):
    provider: Any = UNSET  # ThinkProvider
    prompt: Any = UNSET
    functions: Any = UNSET  # list[FunctionDefinition]
    tool_choice: Any = UNSET  # "toolChoice" (fastproxy extension)
    output_modalities: Any = UNSET  # "outputModalities" (extension)
    max_output_tokens: Any = UNSET  # "maxOutputTokens" (extension)
    managed_prompt: Any = UNSET  # "managedPrompt" (extension): ManagedPrompt


# --- agent.speak and the sessionAudioOutput extension (§4.2, §7.4) --------------------------


class SpeakProvider(_Tolerant):
    voice: Any = UNSET


class Speak(_Tolerant):
    provider: Any = UNSET  # SpeakProvider


class VoiceRef(_Tolerant):
    id: Any = UNSET


class SessionAudioOutput(_Tolerant):
    voice: Any = UNSET  # string or VoiceRef
    speed: Any = UNSET


# --- agent.context (§5.1) -------------------------------------------------------------------


class FunctionCallEntry(_Tolerant):
    id: Any = UNSET
    name: Any = UNSET
    arguments: Any = UNSET
    response: Any = UNSET


class HistoryEntry(_Tolerant):
    """One entry of ``agent.context.messages``: a message or a batch of function calls.

    ``type`` (normally ``"History"``) is not checked: role/content or function_calls decide.
    """

    role: Any = UNSET
    content: Any = UNSET
    function_calls: Any = UNSET  # list[FunctionCallEntry]


class Context(_Tolerant):
    messages: Any = UNSET  # list[HistoryEntry]


# --- top level ------------------------------------------------------------------------------


class Agent(_Tolerant, rename="camel"):
    think: Any = UNSET  # Think or list (first object element is used, §4.1)
    speak: Any = UNSET  # Speak or list
    context: Any = UNSET  # Context
    greeting: Any = UNSET  # §5.2
    idle_timeout_ms: Any = UNSET  # "idleTimeoutMs" (extension, §4.5)
    session_audio_output: Any = UNSET  # "sessionAudioOutput" (extension): SessionAudioOutput


class Flags(_Tolerant):
    history: Any = UNSET  # §5.3


class Settings(_Tolerant, tag_field="type", tag="Settings"):
    """The ``Settings`` client message. Tagged so it can join a union of client messages."""

    audio: Any = UNSET  # Audio
    agent: Any = UNSET  # Agent
    flags: Any = UNSET  # Flags
