"""The example payloads of PROTOCOL.md §13, shared by the two suites that implement its scenarios.

``tests/unit`` runs the acceptance scenarios against the sans-I/O Session (``harness``) and
``tests/conformance`` runs them over real sockets (``e2e_kit``); both take the scenarios' example
messages and expected values from here, so the two suites cannot drift apart. Only data and tiny
pure builders live here: nothing that depends on either harness. ``tests/conftest.py`` puts this
directory on ``sys.path``, so ``from spec_examples import ...`` works in every suite.

The objects are shared: tests must copy one (``copy.deepcopy``) before changing it.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

Event = dict[str, Any]

# --------------------------------------------------------------------------------------------
# §13.1 fixtures: READY-setup's Settings, the default session (§4.5-§4.7), upstream events

# §13.1 H3: the Settings of READY-setup.
S0: Event = {"type": "Settings", "agent": {"think": {"prompt": "Be brief."}}}
# §4.7 (P-18): the upstream audio format, PCM 24 kHz.
PCM24: Event = {"type": "audio/pcm", "rate": 24000}
# §4.5 (P-18, P-24): turn_detection with the default turn_detection=server_vad.
SERVER_VAD: Event = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 200,
    "create_response": True,
    "interrupt_response": True,
}
# §4.5 (P-23): turn_detection with turn_detection=semantic_vad.
SEMANTIC_VAD: Event = {
    "type": "semantic_vad",
    "eagerness": "auto",
    "create_response": True,
    "interrupt_response": True,
}
# §4.6 (P-18): the transcription object with the default settings.
TRANSCRIPTION: Event = {"model": "gpt-4o-transcribe", "language": "en", "prompt": ""}
# §4.7 (P-18): the session of {"type":"Settings"} with the default settings.
DEFAULT_SESSION: Event = {
    "type": "realtime",
    "model": "gpt-realtime",
    "instructions": "",
    "audio": {
        "input": {"format": PCM24, "transcription": TRANSCRIPTION, "turn_detection": SERVER_VAD},
        "output": {"format": PCM24},
    },
}


def Z(n: int) -> bytes:
    """§13.1 H7 ``Z(n)``: ``n`` bytes of silence."""
    return bytes(n)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# §13.1 upstream (OpenAI Realtime) server events of the scenarios' scripts.
def response_created(rid: str, status: str = "in_progress") -> Event:
    return {"type": "response.created", "response": {"id": rid, "status": status}}


def response_done(rid: str, status: str = "completed") -> Event:
    return {"type": "response.done", "response": {"id": rid, "status": status}}


def audio_delta(rid: str, iid: str, pcm: bytes | str) -> Event:
    """``response.output_audio.delta`` carrying ``pcm`` (bytes, or already base64 text)."""
    return _content_part(
        "response.output_audio.delta", rid, iid, delta=pcm if isinstance(pcm, str) else b64(pcm)
    )


def audio_done(rid: str, iid: str = "item_a1") -> Event:
    return _content_part("response.output_audio.done", rid, iid)


def transcript_delta(rid: str, iid: str, delta: str) -> Event:
    return _content_part("response.output_audio_transcript.delta", rid, iid, delta=delta)


def transcript_done(rid: str, iid: str, transcript: str) -> Event:
    return _content_part("response.output_audio_transcript.done", rid, iid, transcript=transcript)


def text_done(rid: str, iid: str, text: str) -> Event:
    return _content_part("response.output_text.done", rid, iid, text=text)


def function_call_arguments_done(
    rid: str, iid: str, call_id: str, name: str, arguments: str = "{}"
) -> Event:
    return {
        "type": "response.function_call_arguments.done",
        "response_id": rid,
        "item_id": iid,
        "output_index": 0,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def function_call_item_added(rid: str, call_id: str, name: str, iid: str = "item_f1") -> Event:
    return {
        "type": "response.output_item.added",
        "response_id": rid,
        "output_index": 0,
        "item": {
            "id": iid,
            "type": "function_call",
            "call_id": call_id,
            "name": name,
            "arguments": "",
        },
    }


def error_event(
    code: str | None, message: str | None, event_id: str | None = None, type_: str | None = None
) -> Event:
    """An upstream ``error`` event; ``error`` holds only the fields given (type first)."""
    err: Event = {}
    if type_ is not None:
        err["type"] = type_
    if code is not None:
        err["code"] = code
    if message is not None:
        err["message"] = message
    if event_id is not None:
        err["event_id"] = event_id
    return {"type": "error", "error": err}


def _content_part(type_: str, rid: str, iid: str, **fields: Any) -> Event:
    return {
        "type": type_,
        "response_id": rid,
        "item_id": iid,
        "output_index": 0,
        "content_index": 0,
        **fields,
    }


def scripted_create(text: str) -> Event:
    """The ``response.create`` that has the model speak ``text`` (P-81, P-90: scripted speech)."""
    return {
        "type": "response.create",
        "response": {
            "conversation": "none",
            "instructions": "Say exactly the following text, word for word, and nothing else:\n"
            + text,
        },
    }


# --------------------------------------------------------------------------------------------
# §13.3 Settings and readiness

# P-19: a Settings that uses every mapped field.
P19_SETTINGS: Event = {
    "type": "Settings",
    "audio": {
        "input": {"encoding": "linear16", "sample_rate": 16000},
        "output": {"encoding": "linear16", "sample_rate": 24000},
    },
    "agent": {
        "idleTimeoutMs": 10000,
        "think": {
            "provider": {"type": "open_ai", "model": "gpt-realtime-mini", "temperature": 0.7},
            "prompt": "Be brief.",
            "functions": [
                {"name": "get_time", "description": "Get time", "parameters": {"type": "object"}},
                {"name": "ping"},
            ],
            "toolChoice": "auto",
            "outputModalities": ["audio"],
            "maxOutputTokens": 256,
            "managedPrompt": {"id": " pmpt_1 ", "version": "", "variables": {"city": "Paris"}},
        },
        "speak": {"provider": {"type": "open_ai", "voice": "alloy"}},
        "sessionAudioOutput": {"speed": 1.25},
    },
}
# P-19: the session of P19_SETTINGS (P-20: also of p20_settings()).
P19_SESSION: Event = {
    "type": "realtime",
    "model": "gpt-realtime-mini",
    "instructions": "Be brief.",
    "tools": [
        {
            "type": "function",
            "name": "get_time",
            "description": "Get time",
            "parameters": {"type": "object"},
        },
        {"type": "function", "name": "ping", "parameters": {}},
    ],
    "tool_choice": "auto",
    "output_modalities": ["audio"],
    "max_output_tokens": 256,
    "prompt": {"id": "pmpt_1", "variables": {"city": "Paris"}},
    "audio": {
        "input": {
            "format": PCM24,
            "transcription": TRANSCRIPTION,
            "turn_detection": {**SERVER_VAD, "idle_timeout_ms": 10000},
        },
        "output": {"format": PCM24, "voice": "alloy", "speed": 1.25},
    },
}


def p20_settings() -> Event:
    """P-20: a fresh copy of P19_SETTINGS plus fields that are never sent upstream."""
    settings = copy.deepcopy(P19_SETTINGS)
    settings.update({"tags": ["x"], "flags": {"history": True}, "mip_opt_out": True})
    settings["agent"].update(
        {
            "language": "de",
            "listen": {"provider": {"type": "deepgram", "model": "nova-3"}},
            "greeting": "Hi",
            "context": {"messages": [{"type": "History", "role": "user", "content": "Hello"}]},
        }
    )
    settings["agent"]["think"]["endpoint"] = {"url": "https://x"}
    settings["agent"]["think"]["functions"][0]["endpoint"] = {"url": "https://x"}
    return settings


# P-20: words that must not appear anywhere in the session.update.
P20_NEVER_SENT = ("temperature", "endpoint", "tags", "flags", "greeting", "context")
# P-21: wrongly typed fields.
P21_SETTINGS: Event = {
    "type": "Settings",
    "agent": {
        "think": {
            "prompt": 42,
            "functions": [{"description": "no name"}],
            "toolChoice": "sometimes",
        },
        "greeting": 7,
    },
}
# P-21: the paths the settings_field_ignored Warning names, in order.
P21_IGNORED_PATHS = (
    "agent.think.prompt",
    "agent.think.functions[0]",
    "agent.think.toolChoice",
    "agent.greeting",
)
# P-22: (agent.think fragment, session key, expected value or None when dropped with a Warning).
P22_CASES = [
    ({"maxOutputTokens": 0}, "max_output_tokens", None),
    ({"maxOutputTokens": -1}, "max_output_tokens", None),
    ({"maxOutputTokens": 1.5}, "max_output_tokens", None),
    ({"maxOutputTokens": 5000}, "max_output_tokens", None),
    ({"maxOutputTokens": "inf"}, "max_output_tokens", "inf"),
    ({"outputModalities": ["text", "audio"]}, "output_modalities", ["audio"]),
    ({"outputModalities": ["text"]}, "output_modalities", ["text"]),
    ({"outputModalities": ["video"]}, "output_modalities", None),
    (
        {"toolChoice": {"type": "function", "name": "get_time"}},
        "tool_choice",
        {"type": "function", "name": "get_time"},
    ),
    ({"managedPrompt": {"id": "  "}}, "prompt", None),
]
# P-23: the Settings mapped under each turn_detection mode.
P23_SETTINGS: Event = {"type": "Settings", "agent": {"idleTimeoutMs": 10000}}
# P-24: (agent.idleTimeoutMs, the idle_timeout_ms it maps to, or None for none), no Warning.
P24_IDLE_TIMEOUTS = [(10000, 10000), (1000, 5000), (120000, 30000), (7500.5, 7501), (-1, None)]
# P-25: the transcription object with transcription_model/-_language = gpt-4o-mini-transcribe/fr.
P25_TRANSCRIPTION: Event = {"model": "gpt-4o-mini-transcribe", "language": "fr", "prompt": ""}
# P-26: think and speak given as lists (the first entry is used).
P26_SETTINGS: Event = {
    "type": "Settings",
    "agent": {
        "think": [
            {"provider": {"model": "m1"}, "prompt": "A"},
            {"provider": {"model": "m2"}, "prompt": "B"},
        ],
        "speak": [{"provider": {"voice": "marin"}}, {"provider": {"voice": "cedar"}}],
    },
}
# P-32: a Settings with a greeting and context.
P32_SETTINGS: Event = {
    "type": "Settings",
    "agent": {
        "greeting": "Hi",
        "context": {"messages": [{"type": "History", "role": "user", "content": "Hello"}]},
    },
}

# --------------------------------------------------------------------------------------------
# §13.7 Client messages

# P-72 (§7): the supported client message types, each named in the Error's description.
SUPPORTED_CLIENT_TYPES = (
    "Settings",
    "UpdatePrompt",
    "UpdateSpeak",
    "InjectUserMessage",
    "InjectAgentMessage",
    "FunctionCallResponse",
    "KeepAlive",
)
# P-74: (client message with an invalid field, the field named in the Error).
P74_CASES = [
    ({"type": "InjectUserMessage"}, "content"),
    ({"type": "InjectUserMessage", "content": 5}, "content"),
    ({"type": "FunctionCallResponse", "content": "x"}, "id"),
    ({"type": "UpdatePrompt"}, "prompt"),
    ({"type": "InjectAgentMessage", "message": "  "}, "message"),
]


def prompt_update(instructions: str) -> Event:
    """P-76, P-77, P-124: the session.update of an UpdatePrompt (the instructions it sets)."""
    return {"type": "session.update", "session": {"type": "realtime", "instructions": instructions}}


# P-78, P-79: the UpdateSpeak to voice marin and the session.update it causes.
P78_UPDATE_SPEAK: Event = {
    "type": "UpdateSpeak",
    "speak": {"provider": {"type": "open_ai", "voice": "marin"}},
}
P78_SESSION_UPDATE: Event = {
    "type": "session.update",
    "session": {
        "type": "realtime",
        "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"}},
    },
}
# P-79: the Warning when upstream rejects the voice change.
P79_WARNING: Event = {
    "type": "Warning",
    "description": "Voice cannot be changed after audio",
    "code": "cannot_update_voice",
}
# P-125 case (b): the upstream event that ends a turn whose speech_stopped was lost.
P125_TIMEOUT_TRIGGERED: Event = {
    "type": "input_audio_buffer.timeout_triggered",
    "audio_start_ms": 0,
    "audio_end_ms": 5000,
    "item_id": "item_u1",
}

# --------------------------------------------------------------------------------------------
# §13.8 Context, greeting and History

# P-85: context messages of every role.
P85_SETTINGS: Event = {
    "type": "Settings",
    "agent": {
        "think": {"prompt": "Help."},
        "context": {
            "messages": [
                {"type": "History", "role": "user", "content": "Hello"},
                {"type": "History", "role": "assistant", "content": "Hi there!"},
                {"type": "History", "role": "system", "content": "x"},
            ]
        },
    },
}
# P-86: context with a client-side function call and its result.
P86_SETTINGS: Event = {
    "type": "Settings",
    "agent": {
        "context": {
            "messages": [
                {"type": "History", "role": "user", "content": "Time?"},
                {
                    "type": "History",
                    "function_calls": [
                        {
                            "id": "call_9",
                            "name": "get_time",
                            "client_side": True,
                            "arguments": "{}",
                            "response": '{"time":"09:00"}',
                        }
                    ],
                },
            ]
        }
    },
}
# P-86: the items of the conversation.item.create events that P86_SETTINGS causes, in order.
P86_ITEMS: list[Event] = [
    {
        "id": "fp_1",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "Time?"}],
    },
    {
        "id": "fp_2",
        "type": "function_call",
        "call_id": "call_9",
        "name": "get_time",
        "arguments": "{}",
    },
    {
        "id": "fp_3",
        "type": "function_call_output",
        "call_id": "call_9",
        "output": '{"time":"09:00"}',
    },
]
# P-90: the client's messages (History left out) of a spoken greeting.
P90_CLIENT_TYPES = [
    "Welcome",
    "SettingsApplied",
    "ConversationText",
    "AgentStartedSpeaking",
    "<binary>",
    "AgentAudioDone",
]
# P-91: the History message of the P-57 function call (get_time, answered {"time":"12:00"}).
P91_FUNCTION_CALL_HISTORY: Event = {
    "type": "History",
    "function_calls": [
        {
            "id": "call_1",
            "name": "get_time",
            "client_side": True,
            "arguments": "{}",
            "response": '{"time":"12:00"}',
        }
    ],
}

# --------------------------------------------------------------------------------------------
# §13.9 Upstream events

# P-94: the client's messages (History left out): audio resp_1, function call resp_2, text resp_3.
P94_CLIENT_TYPES = [
    "AgentStartedSpeaking",
    "<binary>",
    "AgentAudioDone",  # resp_1, at its output_audio.done
    "ConversationText",
    "FunctionCallRequest",
    "AgentAudioDone",  # resp_2, at its response.done
    "ConversationText",
    "AgentAudioDone",  # resp_3, at its response.done
]
# P-95: the function call item announced before its arguments.
P95_ITEM_ADDED = function_call_item_added("resp_1", "call_1", "get_current_time")
# P-95: what the client gets for it.
P95_CLIENT_MESSAGES: list[Event] = [
    {"type": "AgentThinking", "content": ""},
    {
        "type": "FunctionCallRequest",
        "functions": [
            {"id": "call_1", "name": "get_current_time", "arguments": "{}", "client_side": True}
        ],
    },
]
# P-97: speech_started, speech_stopped, and a speech_stopped with the extra fields.
P97_SPEECH: list[Event] = [
    {"type": "input_audio_buffer.speech_started", "audio_start_ms": 1000, "item_id": "item_u1"},
    {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 2400, "item_id": "item_u1"},
    {
        "type": "input_audio_buffer.speech_stopped",
        "audio_end_ms": 3000,
        "item_id": "item_u2",
        "channel": [0],
        "last_word_end": 1.5,
    },
]


def p98_transcript(text: str, final: bool) -> Event:
    """P-98: the Transcript message (extra events) for the user's input transcription."""
    return {
        "type": "Transcript",
        "transcript": text,
        "is_final": final,
        "speech_final": final,
        "channel": 0,
        "channel_index": [0],
        "start": 0,
        "duration": 0,
        "alternatives": [{"transcript": text, "confidence": 1, "words": []}],
    }


# P-98: the completed input transcription after the deltas "Hel", "lo ", "world".
P98_TRANSCRIPTION_COMPLETED: Event = {
    "type": "conversation.item.input_audio_transcription.completed",
    "item_id": "item_u1",
    "content_index": 0,
    "transcript": "Hello world",
}
# P-98: the client's messages for it, with or without the extra events.
P98_USER_TEXT: list[Event] = [
    {"type": "ConversationText", "role": "user", "content": "Hello world"},
    {"type": "History", "role": "user", "content": "Hello world"},
]

# --------------------------------------------------------------------------------------------
# §13.13 End to end

# P-116: S0 with one function.
P116_SETTINGS: Event = {
    "type": "Settings",
    "agent": {
        "think": {
            "prompt": "Be brief.",
            "functions": [{"name": "get_current_time", "parameters": {"type": "object"}}],
        }
    },
}
# P-116: the client's FunctionCallResponse content.
P116_ANSWER = '{"time":"12:00"}'
# P-116: the client's messages after READY (History left out).
P116_CLIENT_TYPES = [
    "ConversationText",
    "FunctionCallRequest",
    "AgentAudioDone",
    "AgentThinking",
    "AgentStartedSpeaking",
    "<binary>",
    "AgentAudioDone",
    "ConversationText",
]
