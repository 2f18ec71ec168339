"""Every message that crosses a wire, as msgspec Structs, with one decoder per direction.

- Client → proxy (Deepgram Voice Agent, PROTOCOL.md §7): a tagged union on ``type``.
  ``Settings`` keeps its sub-objects loosely typed here because a wrongly typed field must not
  reject the whole message (§4.1); fastproxy.protocol.settings_map validates them field by field.
- Proxy → client (§8.1): Structs that encode exactly the shapes of the specification; optional
  values default to ``UNSET`` so that an absent key is never emitted as ``null`` (J3).
- Upstream → proxy (OpenAI Realtime GA server events, §8.2): a tagged union of the events the
  Session reads, each declaring only the fields it needs (unknown keys ignored, J5), plus
  field-less Structs for the log-only events. Decoding failures are classified by ``classify_*``.

The decoders are built once at import time and reused (decoding is the costliest step of the
control path).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from msgspec import UNSET, Struct, UnsetType

# ---------------------------------------------------------------------------------------------
# Client → proxy (§7)
# ---------------------------------------------------------------------------------------------


class Settings(Struct, tag="Settings", tag_field="type"):
    """§4. Sub-objects stay raw (``Any``) and are validated by settings_map."""

    audio: Any = UNSET
    agent: Any = UNSET
    flags: Any = UNSET

    def as_object(self) -> dict[str, Any]:
        """The message as the JSON object settings_map reads (absent keys stay absent)."""
        obj: dict[str, Any] = {"type": "Settings"}
        if self.audio is not UNSET:
            obj["audio"] = self.audio
        if self.agent is not UNSET:
            obj["agent"] = self.agent
        if self.flags is not UNSET:
            obj["flags"] = self.flags
        return obj


class UpdatePrompt(Struct, tag="UpdatePrompt", tag_field="type"):
    prompt: str


class UpdateSpeak(Struct, tag="UpdateSpeak", tag_field="type"):
    speak: dict[str, Any] | list[Any]


class InjectUserMessage(Struct, tag="InjectUserMessage", tag_field="type"):
    content: str


class InjectAgentMessage(Struct, tag="InjectAgentMessage", tag_field="type"):
    # ``message`` is required and non-blank; the older Deepgram field ``content`` is accepted
    # when ``message`` is absent (§7.1). Validated by ``inject_agent_text``.
    message: Any = UNSET
    content: Any = UNSET


class FunctionCallResponse(Struct, tag="FunctionCallResponse", tag_field="type"):
    id: str
    name: Any = UNSET
    content: Any = UNSET


class KeepAlive(Struct, tag="KeepAlive", tag_field="type"):
    pass


ClientMessage = (
    Settings
    | UpdatePrompt
    | UpdateSpeak
    | InjectUserMessage
    | InjectAgentMessage
    | FunctionCallResponse
    | KeepAlive
)

CLIENT_TYPES: Final = (
    "Settings",
    "UpdatePrompt",
    "UpdateSpeak",
    "InjectUserMessage",
    "InjectAgentMessage",
    "FunctionCallResponse",
    "KeepAlive",
)

_client_decoder: Final = msgspec.json.Decoder(ClientMessage)
_any_decoder: Final = msgspec.json.Decoder()


class InvalidClientJson(Exception):
    """§7.1 "malformed": invalid UTF-8, not JSON, not an object, or a bad required field."""


class DisallowedClientType(Exception):
    """§7.1: ``type`` missing, not a string, or not a client message type."""

    def __init__(self, type_name: str) -> None:
        super().__init__(type_name)
        self.type_name = type_name


# JSON nesting deeper than this is malformed (§7.1). msgspec itself stops at the interpreter's
# recursion limit with a RecursionError, and a value that decodes just under that limit can fail
# to encode when it is re-encoded later from a deeper stack (a held FunctionCallResponse replayed
# at READY): the bound keeps every accepted value far from it.
MAX_JSON_DEPTH: Final = 128
_TOO_DEEP: Final = f"message is nested more than {MAX_JSON_DEPTH} levels deep"


def nested_too_deeply(data: bytes, value: Any) -> bool:
    """True if ``value`` (decoded from ``data``) nests containers deeper than MAX_JSON_DEPTH.

    Cheap for ordinary messages: fewer brackets than the bound cannot nest deeper than it, so
    only a message with many brackets is walked (iteratively, with an early exit)."""
    if data.count(b"{") + data.count(b"[") <= MAX_JSON_DEPTH:
        return False
    if isinstance(value, Struct):
        value = [getattr(value, name) for name in value.__struct_fields__]
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, dict | list))
    return False


def is_utf8(data: bytes) -> bool:
    """W8: msgspec validates UTF-8 only inside the strings it keeps, not in skipped keys or
    values, so the whole message is checked here (no copy for the usual ASCII message)."""
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def decode_client_message(data: bytes) -> ClientMessage:
    """Decode one client text message or raise one of the two classified errors above."""
    if not is_utf8(data):
        raise InvalidClientJson("message is not valid UTF-8")
    try:
        msg: ClientMessage = _client_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        if isinstance(exc, msgspec.ValidationError):
            raise _classify_client_failure(data, str(exc)) from None
        raise InvalidClientJson(_decode_reason(exc)) from None
    except RecursionError:
        raise InvalidClientJson(_TOO_DEEP) from None
    if nested_too_deeply(data, msg):
        raise InvalidClientJson(_TOO_DEEP)
    if isinstance(msg, InjectAgentMessage):
        inject_agent_text(msg)  # raises InvalidClientJson when neither field is usable
    elif isinstance(msg, FunctionCallResponse) and not msg.id.strip():
        raise InvalidClientJson("field `id` must be a non-blank string")
    return msg


def _decode_reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "message is not valid UTF-8"
    return f"message is not valid JSON ({exc})"


def _classify_client_failure(data: bytes, error: str) -> Exception:
    try:
        obj = _any_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        return InvalidClientJson(_decode_reason(exc))
    except RecursionError:
        return InvalidClientJson(_TOO_DEEP)
    if nested_too_deeply(data, obj):
        return InvalidClientJson(_TOO_DEEP)
    if not isinstance(obj, dict):
        return InvalidClientJson("message is not a JSON object")
    type_name = obj.get("type")
    if not isinstance(type_name, str):
        return DisallowedClientType("(missing)")
    if type_name not in CLIENT_TYPES:
        return DisallowedClientType(type_name)
    return InvalidClientJson(f"invalid {type_name}: {error}")


def inject_agent_text(msg: InjectAgentMessage) -> str:
    """The text of an InjectAgentMessage: ``message``, else the older ``content`` (§7.1)."""
    if msg.message is not UNSET:
        text, field = msg.message, "message"
    elif msg.content is not UNSET:
        text, field = msg.content, "content"
    else:
        raise InvalidClientJson("invalid InjectAgentMessage: missing required field `message`")
    if not isinstance(text, str) or not text.strip():
        raise InvalidClientJson(
            f"invalid InjectAgentMessage: field `{field}` must be a non-blank string"
        )
    return text


# ---------------------------------------------------------------------------------------------
# Proxy → client (§8.1)
# ---------------------------------------------------------------------------------------------


class Welcome(Struct, tag="Welcome", tag_field="type"):
    request_id: str


class SettingsApplied(Struct, tag="SettingsApplied", tag_field="type"):
    pass


class PromptUpdated(Struct, tag="PromptUpdated", tag_field="type"):
    pass


class SpeakUpdated(Struct, tag="SpeakUpdated", tag_field="type"):
    pass


class ConversationText(Struct, tag="ConversationText", tag_field="type"):
    role: str
    content: str


class HistoryFunctionCall(Struct):
    id: str
    name: str
    client_side: bool
    arguments: str
    response: str


class History(Struct, tag="History", tag_field="type", omit_defaults=True):
    role: str | UnsetType = UNSET
    content: str | UnsetType = UNSET
    function_calls: list[HistoryFunctionCall] | UnsetType = UNSET


class UserStartedSpeaking(Struct, tag="UserStartedSpeaking", tag_field="type"):
    pass


class AgentThinking(Struct, tag="AgentThinking", tag_field="type"):
    content: str = ""


class FunctionCallRequestItem(Struct):
    id: str
    name: str
    arguments: str
    client_side: bool = True


class FunctionCallRequest(Struct, tag="FunctionCallRequest", tag_field="type"):
    functions: list[FunctionCallRequestItem]


class AgentStartedSpeaking(Struct, tag="AgentStartedSpeaking", tag_field="type"):
    total_latency: float
    tts_latency: float
    ttt_latency: float


class AgentAudioDone(Struct, tag="AgentAudioDone", tag_field="type"):
    pass


class InjectionRefused(Struct, tag="InjectionRefused", tag_field="type"):
    message: str


class Error(Struct, tag="Error", tag_field="type"):
    description: str
    code: str


class Warning(Struct, tag="Warning", tag_field="type"):
    description: str
    code: str


class TranscriptAlternative(Struct):
    transcript: str
    confidence: int = 1
    words: list[Any] = msgspec.field(default_factory=list)


class Transcript(Struct, tag="Transcript", tag_field="type"):
    transcript: str
    is_final: bool
    speech_final: bool
    channel: int
    channel_index: list[int]
    start: int
    duration: int
    alternatives: list[TranscriptAlternative]


class UtteranceEnd(Struct, tag="UtteranceEnd", tag_field="type"):
    channel: list[int]
    last_word_end: float | int


ServerMessage = (
    Welcome
    | SettingsApplied
    | PromptUpdated
    | SpeakUpdated
    | ConversationText
    | History
    | UserStartedSpeaking
    | AgentThinking
    | FunctionCallRequest
    | AgentStartedSpeaking
    | AgentAudioDone
    | InjectionRefused
    | Error
    | Warning
    | Transcript
    | UtteranceEnd
)

_encoder: Final = msgspec.json.Encoder()
encode = _encoder.encode


# ---------------------------------------------------------------------------------------------
# Upstream → proxy (§8.2): the GA server events the Session reads
# ---------------------------------------------------------------------------------------------


class _Event(Struct, tag_field="type"):
    pass


class SessionCreated(_Event, tag="session.created"):
    pass


class SessionUpdated(_Event, tag="session.updated"):
    pass


class ItemCreated(_Event, tag="conversation.item.created"):
    item: Any = None


class ItemAdded(_Event, tag="conversation.item.added"):
    item: Any = None


class ItemDone(_Event, tag="conversation.item.done"):
    item: Any = None


class TranscriptionDelta(_Event, tag="conversation.item.input_audio_transcription.delta"):
    item_id: str
    delta: str = ""


class TranscriptionCompleted(_Event, tag="conversation.item.input_audio_transcription.completed"):
    item_id: Any = None
    transcript: Any = None


class TranscriptionFailed(_Event, tag="conversation.item.input_audio_transcription.failed"):
    item_id: Any = None
    error: Any = None


class BufferCommitted(_Event, tag="input_audio_buffer.committed"):
    pass


class SpeechStarted(_Event, tag="input_audio_buffer.speech_started"):
    pass


class SpeechStopped(_Event, tag="input_audio_buffer.speech_stopped"):
    channel: Any = None
    last_word_end: Any = None


class TimeoutTriggered(_Event, tag="input_audio_buffer.timeout_triggered"):
    pass


class ResponseRef(Struct):
    id: str
    status: Any = None


class ResponseCreated(_Event, tag="response.created"):
    response: ResponseRef


class ResponseDone(_Event, tag="response.done"):
    response: ResponseRef


class OutputItemAdded(_Event, tag="response.output_item.added"):
    response_id: Any = None
    item: Any = None


class TextDelta(_Event, tag="response.output_text.delta"):
    response_id: Any = None


class TextDone(_Event, tag="response.output_text.done"):
    response_id: Any = None
    item_id: Any = None
    text: Any = None


class AudioDelta(_Event, tag="response.output_audio.delta"):
    delta: bytes  # base64 in JSON; msgspec rejects invalid base64 (→ malformed, §9.4 O1)
    response_id: Any = None
    item_id: Any = None


class AudioDone(_Event, tag="response.output_audio.done"):
    response_id: Any = None


class TranscriptDelta(_Event, tag="response.output_audio_transcript.delta"):
    response_id: Any = None


class TranscriptDone(_Event, tag="response.output_audio_transcript.done"):
    response_id: Any = None
    item_id: Any = None
    transcript: Any = None


class FunctionCallArgumentsDone(_Event, tag="response.function_call_arguments.done"):
    call_id: Any = None
    name: Any = None
    arguments: Any = None
    response_id: Any = None


class UpstreamError(_Event, tag="error"):
    error: Any = None


# §8.2 class L: logged only. One field-less Struct per type keeps the union exhaustive.
LOG_ONLY_EVENTS: Final = (
    "conversation.created",
    "conversation.item.retrieved",
    "conversation.item.truncated",
    "conversation.item.deleted",
    "conversation.item.input_audio_transcription.segment",
    "input_audio_buffer.cleared",
    "input_audio_buffer.dtmf_event_received",
    "response.output_item.done",
    "response.content_part.added",
    "response.content_part.done",
    "response.function_call_arguments.delta",
    "response.mcp_call_arguments.delta",
    "response.mcp_call_arguments.done",
    "response.mcp_call.in_progress",
    "response.mcp_call.completed",
    "response.mcp_call.failed",
    "mcp_list_tools.in_progress",
    "mcp_list_tools.completed",
    "mcp_list_tools.failed",
    "output_audio_buffer.started",
    "output_audio_buffer.stopped",
    "output_audio_buffer.cleared",
    "rate_limits.updated",
)


class LogOnlyEvent(Struct, tag_field="type"):
    """Base of the generated log-only event Structs (see ``event_type``)."""


_LOG_ONLY_STRUCTS: Final = tuple(
    msgspec.defstruct(
        "LogOnly_" + name.replace(".", "_"),
        [],
        bases=(LogOnlyEvent,),
        tag=name,
        tag_field="type",
    )
    for name in LOG_ONLY_EVENTS
)

_MAPPED_EVENTS: Final = (
    SessionCreated,
    SessionUpdated,
    ItemCreated,
    ItemAdded,
    ItemDone,
    TranscriptionDelta,
    TranscriptionCompleted,
    TranscriptionFailed,
    BufferCommitted,
    SpeechStarted,
    SpeechStopped,
    TimeoutTriggered,
    ResponseCreated,
    ResponseDone,
    OutputItemAdded,
    TextDelta,
    TextDone,
    AudioDelta,
    AudioDone,
    TranscriptDelta,
    TranscriptDone,
    FunctionCallArgumentsDone,
    UpstreamError,
)

KNOWN_UPSTREAM_TYPES: Final = frozenset(
    [s.__struct_config__.tag for s in _MAPPED_EVENTS] + list(LOG_ONLY_EVENTS)
)


def _build_upstream_decoder() -> msgspec.json.Decoder[Any]:
    union: Any = _MAPPED_EVENTS[0]
    for struct in (*_MAPPED_EVENTS[1:], *_LOG_ONLY_STRUCTS):
        union = union | struct
    return msgspec.json.Decoder(union)


_upstream_decoder: Final = _build_upstream_decoder()


def event_type(event: Struct) -> str:
    """The wire ``type`` of a decoded upstream event."""
    tag = event.__struct_config__.tag
    return tag if isinstance(tag, str) else type(event).__name__


class InvalidUpstreamJson(Exception):
    """§8.2: a text message that is not a JSON object."""


class MalformedUpstreamEvent(Exception):
    """§8.2: no string ``type``, or a known event missing a field its handler needs."""

    def __init__(self, type_name: str, reason: str) -> None:
        super().__init__(f"{type_name}: {reason}")
        self.type_name = type_name


class UnmappedUpstreamEvent(Exception):
    """§8.2: a string ``type`` that the GA event table does not list."""

    def __init__(self, type_name: str) -> None:
        super().__init__(type_name)
        self.type_name = type_name


def decode_upstream_event(data: bytes) -> Any:
    """Decode one upstream text message into one of the event Structs above, or raise."""
    if not is_utf8(data):
        raise InvalidUpstreamJson("not UTF-8")
    try:
        return _upstream_decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise _classify_upstream_failure(data, str(exc)) from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise InvalidUpstreamJson("not JSON") from None
    except RecursionError:
        raise InvalidUpstreamJson(_TOO_DEEP) from None


def _classify_upstream_failure(data: bytes, error: str) -> Exception:
    try:
        obj = _any_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return InvalidUpstreamJson("not JSON")
    except RecursionError:
        return InvalidUpstreamJson(_TOO_DEEP)
    if not isinstance(obj, dict):
        return InvalidUpstreamJson("not a JSON object")
    type_name = obj.get("type")
    if not isinstance(type_name, str):
        return MalformedUpstreamEvent("(missing)", "no string `type`")
    if type_name not in KNOWN_UPSTREAM_TYPES:
        return UnmappedUpstreamEvent(type_name)
    return MalformedUpstreamEvent(type_name, error)
