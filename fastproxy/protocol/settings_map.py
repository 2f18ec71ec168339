"""Settings → ``session.update`` (PROTOCOL.md §4) and the context, greeting and History flag of
the first ``Settings`` (§5.1–§5.3). Pure functions, no I/O.

``map_settings`` first negotiates the audio formats (§4.4), the only failure that ends the
connection (``UnsupportedAudioFormat``). Every other field is read by one small function per
§4.2 row that returns the mapped value or ``UNSET`` ("absent": the key is omitted, J3) and
appends ``"<path>: <reason>"`` to ``notes`` when the client's value was present but unusable
(§4.1: treated as absent and noted). Values are taken from the tolerant Structs of
``fastproxy.settings_schema``; a nested object is converted only when it is read, so a wrongly
typed field can be noted with its own path instead of failing the whole message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from fastproxy import settings_schema as s
from fastproxy.protocol.actions import AudioFormat
from fastproxy.protocol.options import SessionOptions

__all__ = [
    "DEFAULT_MODEL",
    "PCM_RATES",
    "MappedSettings",
    "UnsupportedAudioFormat",
    "is_blank",
    "map_settings",
    "speak_voice",
    "trim",
]

DEFAULT_MODEL = "gpt-realtime"

_T = TypeVar("_T", bound=msgspec.Struct)
_Notes = list[str]


@dataclass(frozen=True, slots=True)
class MappedSettings:
    """Everything the Session needs from the first ``Settings`` (§4.1 steps 2–5)."""

    session: dict[str, Any]  # the exact "session" object of the session.update
    notes: tuple[str, ...]  # "path: reason", one per noted field (§4.1 step 3)
    input_format: AudioFormat  # client side (§4.4)
    output_format: AudioFormat
    context_items: tuple[dict[str, Any], ...]  # §5.1, without "id", in send order
    greeting: str | None  # §5.2, already None when suppressed (G2) or greeting "off"
    history: bool  # §5.3
    instructions: str  # == session["instructions"]
    output_audio: dict[str, Any]  # a copy of session["audio"]["output"], for UpdateSpeak (§7.4)


class UnsupportedAudioFormat(Exception):
    """§4.1 step 1: a direction's audio format is not in the §4.4 tables.

    ``description`` names the direction(s) and offending values and lists what is supported;
    it is the ``description`` of the ``Error`` ``unsupported_audio_format``.
    """

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


# --- J7 and small readers -------------------------------------------------------------------

# The Unicode White_Space property (str.strip() would also remove U+001C..U+001F).
_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000"
)


def trim(text: str) -> str:
    """J7: remove leading and trailing Unicode whitespace."""
    return text.strip(_WHITESPACE)


def is_blank(text: str) -> bool:
    """J7: empty after trimming."""
    return not trim(text)


def _nonblank(value: Any) -> str | None:
    """``value`` trimmed if it is a non-blank string, else None."""
    if not isinstance(value, str):
        return None
    return trim(value) or None


def _is_number(value: Any) -> bool:
    # JSON true/false decode to bool, a subclass of int: they are not numbers.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_int(value: Any) -> int | None:
    """An integer, or a float with an integral value (16000.0), as int; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():  # False for inf and nan
        return int(value)
    return None


def _note(notes: _Notes, path: str, reason: str) -> None:
    notes.append(f"{path}: {reason}")


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` unless ``value`` is UNSET (J3: absent is omitted, never null)."""
    if value is not UNSET:
        target[key] = value


def _try_struct(value: Any, cls: type[_T]) -> _T | None:
    if isinstance(value, cls):
        return value
    if isinstance(value, dict):
        try:
            return msgspec.convert(value, cls)
        except msgspec.ValidationError:  # e.g. non-string keys: not a JSON object
            return None
    return None


def _struct(value: Any, cls: type[_T], path: str, notes: _Notes) -> _T | None:
    """The object at ``path`` as ``cls``; None if absent, or noted and None if not an object."""
    if value is UNSET:
        return None
    found = _try_struct(value, cls)
    if found is None:
        _note(notes, path, "expected an object")
    return found


def _first_struct(value: Any, cls: type[_T], path: str, notes: _Notes) -> tuple[_T | None, str]:
    """§4.1: ``think``/``speak`` may be arrays; the first element that is an object is used.

    Returns the object and the path to report its fields under (``agent.think[1]`` ...).
    """
    if not isinstance(value, list):
        return _struct(value, cls, path, notes), path
    for index, element in enumerate(value):
        found = _try_struct(element, cls)
        if found is not None:
            return found, f"{path}[{index}]"
    _note(notes, path, "expected an object or an array containing an object")
    return None, path


def _show(value: Any) -> str:
    """A short JSON rendering of a client value for error descriptions."""
    try:
        text = msgspec.json.encode(value).decode()
    except (TypeError, ValueError, RecursionError, msgspec.EncodeError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _compact_json(value: Any) -> str | None:
    try:
        return msgspec.json.encode(value).decode()
    except (TypeError, ValueError, RecursionError, msgspec.EncodeError):
        return None


# --- §4.4 audio format negotiation ----------------------------------------------------------

PCM_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
_RATES = {"linear16": PCM_RATES, "mulaw": (8000,), "alaw": (8000,)}
_DEFAULT_RATE = {"linear16": 24000, "mulaw": 8000, "alaw": 8000}
_UPSTREAM_FORMAT: dict[str, dict[str, Any]] = {
    "linear16": {"type": "audio/pcm", "rate": 24000},
    "mulaw": {"type": "audio/pcmu"},
    "alaw": {"type": "audio/pcma"},
}
_SUPPORTED = (
    "Supported: encoding linear16 (the default) with sample_rate "
    + ", ".join(map(str, PCM_RATES))
    + ' (default 24000); mulaw or alaw with sample_rate 8000; output container absent or "none".'
)
_DEFAULT_FORMAT = AudioFormat("linear16", 24000)


def _direction_format(
    raw: Any, cls: type[s.AudioInput | s.AudioOutput], path: str
) -> AudioFormat | str:
    """One direction's client format, or the description of what is unsupported."""
    if raw is UNSET:
        return _DEFAULT_FORMAT
    fmt = _try_struct(raw, cls)
    if fmt is None:
        return f"{path} {_show(raw)} (expected an object)"
    encoding = "linear16" if fmt.encoding is UNSET else fmt.encoding
    container = fmt.container if isinstance(fmt, s.AudioOutput) else UNSET
    if isinstance(encoding, str) and encoding in _RATES and container in (UNSET, "none"):
        rate = _DEFAULT_RATE[encoding] if fmt.sample_rate is UNSET else _as_int(fmt.sample_rate)
        if rate in _RATES[encoding]:
            return AudioFormat(encoding, rate)
    shown = [("encoding", fmt.encoding), ("sample_rate", fmt.sample_rate), ("container", container)]
    return f"{path} " + ", ".join(f"{key} {_show(v)}" for key, v in shown if v is not UNSET)


def _audio_formats(raw_audio: Any) -> tuple[AudioFormat, AudioFormat]:
    """§4.4: (input, output) client formats; raises UnsupportedAudioFormat."""
    audio = s.Audio() if raw_audio is UNSET else _try_struct(raw_audio, s.Audio)
    if audio is None:
        raise UnsupportedAudioFormat(
            f"Unsupported audio format: audio {_show(raw_audio)} (expected an object). {_SUPPORTED}"
        )
    found_in = _direction_format(audio.input, s.AudioInput, "audio.input")
    found_out = _direction_format(audio.output, s.AudioOutput, "audio.output")
    if isinstance(found_in, AudioFormat) and isinstance(found_out, AudioFormat):
        return found_in, found_out
    problems = "; ".join(p for p in (found_in, found_out) if isinstance(p, str))
    raise UnsupportedAudioFormat(f"Unsupported audio format: {problems}. {_SUPPORTED}")


# --- §4.2 think rows ------------------------------------------------------------------------


def _model(raw_provider: Any, path: str, notes: _Notes) -> str:
    provider = _struct(raw_provider, s.ThinkProvider, f"{path}.provider", notes)
    if provider is None or provider.model is UNSET:
        return DEFAULT_MODEL
    model = _nonblank(provider.model)
    if model is None:
        _note(notes, f"{path}.provider.model", "expected a non-blank string")
        return DEFAULT_MODEL
    return model


def _instructions(value: Any, path: str, notes: _Notes) -> str:
    if isinstance(value, str):
        return value
    if value is not UNSET:
        _note(notes, path, "expected a string")
    return ""


def _tool(raw: Any, path: str, notes: _Notes) -> dict[str, Any] | None:
    """One ``functions`` entry → a function tool; None (noted) if it has no usable name."""
    fn = _try_struct(raw, s.FunctionDefinition)
    if fn is None or _nonblank(fn.name) is None:
        _note(notes, path, "expected an object with a non-blank string name")
        return None
    tool: dict[str, Any] = {"type": "function", "name": fn.name}
    if isinstance(fn.description, str):
        tool["description"] = fn.description
    elif fn.description is not UNSET:
        _note(notes, f"{path}.description", "expected a string")
    if fn.parameters is not UNSET and not isinstance(fn.parameters, dict):
        _note(notes, f"{path}.parameters", "expected an object")
    tool["parameters"] = fn.parameters if isinstance(fn.parameters, dict) else {}
    return tool


def _tools(value: Any, path: str, notes: _Notes) -> list[dict[str, Any]] | UnsetType:
    if isinstance(value, UnsetType):
        return UNSET
    if not isinstance(value, list):
        _note(notes, path, "expected an array")
        return UNSET
    tools = [_tool(entry, f"{path}[{i}]", notes) for i, entry in enumerate(value)]
    return [tool for tool in tools if tool is not None] or UNSET


def _tool_choice(value: Any, path: str, notes: _Notes) -> str | dict[str, Any] | UnsetType:
    if isinstance(value, UnsetType):
        return UNSET
    if isinstance(value, str) and value in ("auto", "none", "required"):
        return value
    if isinstance(value, dict) and value.get("type") == "function":
        name = value.get("name")
        if _nonblank(name) is not None:
            return {"type": "function", "name": name}
    _note(
        notes,
        path,
        'expected "auto", "none", "required" or {"type":"function","name":<non-blank string>}',
    )
    return UNSET


def _output_modalities(value: Any, path: str, notes: _Notes) -> list[str] | UnsetType:
    if isinstance(value, UnsetType):
        return UNSET
    if isinstance(value, list):
        # The upstream accepts one modality; audio includes a transcript.
        if "audio" in value:
            return ["audio"]
        if "text" in value:
            return ["text"]
    _note(notes, path, 'expected an array containing "audio" or "text"')
    return UNSET


def _max_output_tokens(value: Any, path: str, notes: _Notes) -> int | str | UnsetType:
    if isinstance(value, UnsetType):
        return UNSET
    if value == "inf" and isinstance(value, str):
        return "inf"
    tokens = _as_int(value)
    if tokens is not None and 1 <= tokens <= 4096:
        return tokens
    _note(notes, path, 'expected an integer from 1 to 4096 or "inf"')
    return UNSET


def _managed_prompt(value: Any, path: str, notes: _Notes) -> dict[str, Any] | UnsetType:
    managed = _struct(value, s.ManagedPrompt, path, notes)
    if managed is None:
        return UNSET
    prompt_id = _nonblank(managed.id)
    if prompt_id is None:
        _note(notes, f"{path}.id", "expected a non-blank string")
        return UNSET
    prompt: dict[str, Any] = {"id": prompt_id}
    if isinstance(managed.version, str):
        _put(prompt, "version", trim(managed.version) or UNSET)  # blank: omitted, not noted
    elif managed.version is not UNSET:
        _note(notes, f"{path}.version", "expected a string")
    if isinstance(managed.variables, dict):
        prompt["variables"] = managed.variables
    elif managed.variables is not UNSET:
        _note(notes, f"{path}.variables", "expected an object")
    return prompt


def _think_fields(raw_think: Any, notes: _Notes) -> dict[str, Any]:
    """The session keys that come from ``agent.think`` (§4.2 rows model … prompt)."""
    think, path = _first_struct(raw_think, s.Think, "agent.think", notes)
    think = think or s.Think()
    fields = {
        "model": _model(think.provider, path, notes),
        "instructions": _instructions(think.prompt, f"{path}.prompt", notes),
    }
    _put(fields, "tools", _tools(think.functions, f"{path}.functions", notes))
    _put(fields, "tool_choice", _tool_choice(think.tool_choice, f"{path}.toolChoice", notes))
    _put(
        fields,
        "output_modalities",
        _output_modalities(think.output_modalities, f"{path}.outputModalities", notes),
    )
    _put(
        fields,
        "max_output_tokens",
        _max_output_tokens(think.max_output_tokens, f"{path}.maxOutputTokens", notes),
    )
    _put(fields, "prompt", _managed_prompt(think.managed_prompt, f"{path}.managedPrompt", notes))
    return fields


# --- §4.2 audio.output rows (voice, speed) and §7.4 -----------------------------------------


def _speak_voice(raw_speak: Any, notes: _Notes) -> str | None:
    speak, path = _first_struct(raw_speak, s.Speak, "agent.speak", notes)
    if speak is None:
        return None
    provider = _struct(speak.provider, s.SpeakProvider, f"{path}.provider", notes)
    if provider is None or provider.voice is UNSET:
        return None
    voice = _nonblank(provider.voice)
    if voice is None:
        _note(notes, f"{path}.provider.voice", "expected a non-blank string")
    return voice


def speak_voice(speak: Any) -> str | None:
    """§7.4 ``UpdateSpeak``: ``speak.provider.voice`` (first object element if ``speak`` is an
    array) when it is a non-blank string, trimmed; else None (the caller sends the Warning)."""
    return _speak_voice(speak, [])


def _session_voice(value: Any, path: str, notes: _Notes) -> str | dict[str, str] | UnsetType:
    """``sessionAudioOutput.voice``: a non-blank string or ``{"id": <non-blank>}``, trimmed."""
    if isinstance(value, UnsetType):
        return UNSET
    voice = _nonblank(value)
    if voice is not None:
        return voice
    ref = _try_struct(value, s.VoiceRef)
    voice_id = None if ref is None else _nonblank(ref.id)
    if voice_id is not None:
        return {"id": voice_id}
    _note(notes, path, "expected a non-blank string or an object with a non-blank string id")
    return UNSET


def _speed(value: Any, path: str, notes: _Notes) -> float | UnsetType:
    if isinstance(value, UnsetType):
        return UNSET
    if _is_number(value) and 0.25 <= value <= 1.5:  # nan fails the comparison
        return value  # type: ignore[no-any-return]
    _note(notes, path, "expected a number from 0.25 to 1.5")
    return UNSET


def _output_audio(agent: s.Agent, fmt: AudioFormat, notes: _Notes) -> dict[str, Any]:
    """``session.audio.output``: format (§4.4), voice and speed (§4.2)."""
    path = "agent.sessionAudioOutput"
    extension = _struct(agent.session_audio_output, s.SessionAudioOutput, path, notes)
    extension = extension or s.SessionAudioOutput()
    session_voice = _session_voice(extension.voice, f"{path}.voice", notes)
    fallback_voice = _speak_voice(agent.speak, notes)  # read always, so bad types are noted
    output: dict[str, Any] = {"format": dict(_UPSTREAM_FORMAT[fmt.encoding])}
    if session_voice is not UNSET:
        output["voice"] = session_voice
    elif fallback_voice is not None:
        output["voice"] = fallback_voice
    _put(output, "speed", _speed(extension.speed, f"{path}.speed", notes))
    return output


# --- §4.5 turn detection and §4.6 transcription ---------------------------------------------

_SERVER_VAD: dict[str, Any] = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 200,
    "create_response": True,
    "interrupt_response": True,
}
_SEMANTIC_VAD: dict[str, Any] = {
    "type": "semantic_vad",
    "eagerness": "auto",
    "create_response": True,
    "interrupt_response": True,
}


def _idle_timeout(value: Any, path: str, notes: _Notes) -> int | None:
    """``agent.idleTimeoutMs`` → I: rounded halves up, clamped 5000–30000; negative → None."""
    if value is UNSET:
        return None
    if not _is_number(value):
        _note(notes, path, "expected a number")
        return None
    if value < 0:  # -1, other negatives and -inf: absent, silently
        return None
    if isinstance(value, float) and not math.isfinite(value):
        _note(notes, path, "expected a finite number")
        return None
    # Clamp before rounding, so a huge integer never has to become a float.
    clamped: float = min(max(value, 5000), 30000)
    return math.floor(clamped + 0.5)


def _turn_detection(mode: str, idle_timeout_ms: int | None) -> dict[str, Any] | None:
    """None (JSON null, J3's one exception) in manual mode."""
    if mode == "manual":
        return None
    if mode == "semantic_vad":
        return dict(_SEMANTIC_VAD)
    detection = dict(_SERVER_VAD)
    if idle_timeout_ms is not None:
        detection["idle_timeout_ms"] = idle_timeout_ms
    return detection


def _transcription(options: SessionOptions) -> dict[str, Any]:
    return {
        "model": options.transcription_model,
        "language": options.transcription_language,
        "prompt": "",
    }


# --- §5.1 context items ---------------------------------------------------------------------


def _message_item(role: Any, content: str) -> dict[str, Any]:
    """The content part type follows the role; any role but "assistant" is "user"."""
    if role == "assistant" and isinstance(role, str):
        part = {"type": "output_text", "text": content}
        return {"type": "message", "role": "assistant", "content": [part]}
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": content}]}


def _json_text(value: Any, default: str) -> str | None:
    """A string verbatim; absent → ``default``; anything else as compact JSON."""
    if value is UNSET:
        return default
    return value if isinstance(value, str) else _compact_json(value)


def _call_items(raw: Any, path: str, notes: _Notes) -> list[dict[str, Any]]:
    """One ``function_calls`` entry → a function_call item and its function_call_output."""
    call = _try_struct(raw, s.FunctionCallEntry)
    if call is None or _nonblank(call.id) is None or _nonblank(call.name) is None:
        _note(notes, path, "expected an object with non-blank string id and name")
        return []
    arguments = _json_text(call.arguments, "{}")
    output = _json_text(call.response, "")
    if arguments is None or output is None:
        _note(notes, path, "arguments and response must be JSON")
        return []
    return [
        {"type": "function_call", "call_id": call.id, "name": call.name, "arguments": arguments},
        {"type": "function_call_output", "call_id": call.id, "output": output},
    ]


def _calls_items(calls: Any, path: str, notes: _Notes) -> list[dict[str, Any]]:
    if not isinstance(calls, list):
        _note(notes, path, "expected an array")
        return []
    return [
        item for i, call in enumerate(calls) for item in _call_items(call, f"{path}[{i}]", notes)
    ]


def _entry_items(raw: Any, path: str, notes: _Notes) -> list[dict[str, Any]]:
    """One ``context.messages`` entry → its items; an entry with ``content`` is a message."""
    entry = _struct(raw, s.HistoryEntry, path, notes)
    if entry is None:
        return []
    if entry.content is UNSET and entry.function_calls is not UNSET:
        return _calls_items(entry.function_calls, f"{path}.function_calls", notes)
    if not isinstance(entry.content, str):
        _note(notes, f"{path}.content", "expected a string")
        return []
    return [_message_item(entry.role, entry.content)]


def _context_items(raw_context: Any, notes: _Notes) -> tuple[tuple[dict[str, Any], ...], bool]:
    """(items in send order, whether ``messages`` is a non-empty array — G2)."""
    context = _struct(raw_context, s.Context, "agent.context", notes)
    if context is None or context.messages is UNSET:
        return (), False
    messages = context.messages
    if not isinstance(messages, list):
        _note(notes, "agent.context.messages", "expected an array")
        return (), False
    items = [
        item
        for i, entry in enumerate(messages)
        for item in _entry_items(entry, f"agent.context.messages[{i}]", notes)
    ]
    return tuple(items), bool(messages)


# --- §5.2 greeting, §5.3 History flag -------------------------------------------------------


def _greeting(value: Any, notes: _Notes) -> str | None:
    """G1: a non-blank string, untrimmed; a non-string is noted; blank is ignored silently."""
    if value is UNSET:
        return None
    if not isinstance(value, str):
        _note(notes, "agent.greeting", "expected a string")
        return None
    return None if is_blank(value) else value


def _history_flag(raw_flags: Any, notes: _Notes) -> bool:
    flags = _struct(raw_flags, s.Flags, "flags", notes)
    if flags is None or flags.history is UNSET:
        return True
    if isinstance(flags.history, bool):
        return flags.history
    _note(notes, "flags.history", "expected a boolean")
    return True


# --- entry point ----------------------------------------------------------------------------


def _root(settings: Any) -> s.Settings:
    if isinstance(settings, s.Settings):
        return settings
    if isinstance(settings, dict):
        # "type" is the message tag, already dispatched on by the caller.
        body = {key: value for key, value in settings.items() if key != "type"}
        return _try_struct(body, s.Settings) or s.Settings()
    return s.Settings()


def map_settings(settings: Any, options: SessionOptions) -> MappedSettings:
    """Map the first ``Settings`` (its decoded JSON object, or a ``Settings`` Struct).

    Raises ``UnsupportedAudioFormat`` (§4.1 step 1) and nothing else; every other problem is
    a note. The caller sends the Warning (notes joined), the session.update, and later the
    context items, each with its ``fp_<n>`` id.
    """
    root = _root(settings)
    input_format, output_format = _audio_formats(root.audio)
    notes: _Notes = []
    agent = _struct(root.agent, s.Agent, "agent", notes) or s.Agent()
    session: dict[str, Any] = {"type": "realtime", **_think_fields(agent.think, notes)}
    idle_timeout_ms = _idle_timeout(agent.idle_timeout_ms, "agent.idleTimeoutMs", notes)
    output_audio = _output_audio(agent, output_format, notes)
    session["audio"] = {
        "input": {
            "format": dict(_UPSTREAM_FORMAT[input_format.encoding]),
            "transcription": _transcription(options),
            "turn_detection": _turn_detection(options.turn_detection, idle_timeout_ms),
        },
        "output": output_audio,
    }
    context_items, has_context = _context_items(agent.context, notes)
    greeting = _greeting(agent.greeting, notes)
    if has_context or options.greeting == "off":  # G2, G4
        greeting = None
    history = _history_flag(root.flags, notes)
    return MappedSettings(
        session=session,
        notes=tuple(notes),
        input_format=input_format,
        output_format=output_format,
        context_items=context_items,
        greeting=greeting,
        history=history,
        instructions=session["instructions"],
        # the session's own copy: voice/speed change later (UpdateSpeak); format is a dict
        output_audio={**output_audio, "format": dict(output_audio["format"])},
    )
