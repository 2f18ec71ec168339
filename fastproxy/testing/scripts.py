"""Reply scripts: what the mock upstream sends for one response.

A reply *spec* (:class:`AudioReply`, :class:`TextReply`, :class:`FunctionCallReply`,
:class:`ErrorReply`, :class:`NoReply`, :class:`CustomReply`) says what a response should look
like; :func:`build_steps` turns it into the concrete list of events (with :class:`Pause` markers
for pacing) in the order the real API emits them (see ``/work/shared/traces``)::

    response.created, rate_limits.updated, response.output_item.added,
    conversation.item.added, response.content_part.added,
    (response.output_audio_transcript.delta, response.output_audio.delta)*,
    response.output_audio.done, response.output_audio_transcript.done,
    response.content_part.done, response.output_item.done, conversation.item.done,
    response.done

Out-of-band responses (``"conversation": "none"``) omit the ``conversation.item.*`` events, as
the API does not add their item to the conversation. The mock connection plays the steps.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from . import events as ev
from .speech import BYTES_PER_MS, synth_speech

Event = dict[str, Any]

DEFAULT_REPLY_TEXT = "Hello from the mock upstream."
SAY_EXACTLY_PREFIX = "Say exactly the following text"


@dataclass(frozen=True, slots=True)
class Pause:
    """Wait ``ms`` milliseconds before the next step."""

    ms: float


Step = Event | Pause


@dataclass(frozen=True, slots=True)
class ReplyContext:
    """Ids and request facts a reply is built from (allocated by the connection)."""

    response_id: str
    item_id: str
    call_id: str  # "" unless the spec is a FunctionCallReply or a CustomReply
    previous_item_id: str | None = None
    out_of_band: bool = False
    request: Event | None = None  # the response.create; None for a VAD-created response
    pacing_ms: float = 0.0
    delta_ms: int = 100


@dataclass(frozen=True, slots=True)
class AudioReply:
    """A spoken answer: transcript deltas interleaved with ~``delta_ms`` audio deltas.

    ``text`` None → derived by the connection (§ ``MockBehaviour.reply_text``); ``audio_ms``
    None → the behaviour's ``reply_audio_ms``. ``end`` False leaves the response open (no
    ``response.done``), so it stays active until the test ends it. ``delay_ms`` is waited
    before ``response.created``, ``done_delay_ms`` before ``response.done``; ``pacing_ms`` None
    → the behaviour's ``pacing_ms`` between audio deltas.
    """

    text: str | None = None
    audio_ms: int | None = None
    status: str = "completed"
    end: bool = True
    delay_ms: float = 0.0
    done_delay_ms: float = 0.0
    pacing_ms: float | None = None


@dataclass(frozen=True, slots=True)
class TextReply:
    """A text-only answer (``output_modalities: ["text"]``)."""

    text: str | None = None
    status: str = "completed"
    end: bool = True
    delay_ms: float = 0.0
    done_delay_ms: float = 0.0
    pacing_ms: float | None = None


@dataclass(frozen=True, slots=True)
class FunctionCallReply:
    """A response whose only output is one function call (``call_id`` None → ``call_<n>``)."""

    name: str
    arguments: str = "{}"
    call_id: str | None = None
    end: bool = True
    delay_ms: float = 0.0
    done_delay_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """Refuse the ``response.create`` with an ``error`` naming its ``event_id`` (P-121)."""

    code: str = "invalid_value"
    message: str = "Bad response"
    type: str = "invalid_request_error"
    delay_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class NoReply:
    """Ignore the ``response.create`` (P-69: a mock that never answers)."""


@dataclass(frozen=True, slots=True)
class CustomReply:
    """Any sequence: ``build(ctx)`` returns the steps (events and :class:`Pause`)."""

    build: Callable[[ReplyContext], Sequence[Step]]


ReplySpec = AudioReply | TextReply | FunctionCallReply | ErrorReply | NoReply | CustomReply


def split_words(text: str) -> list[str]:
    """Delta-sized pieces of ``text`` whose concatenation is exactly ``text``."""
    return re.findall(r"\S+\s*|\s+", text)


def say_exactly_text(request: Event | None) -> str | None:
    """The text of an out-of-band "Say exactly the following text …:\\n<text>" request."""
    if not request:
        return None
    response = request.get("response")
    if not isinstance(response, dict):
        return None
    instructions = response.get("instructions")
    if isinstance(instructions, str) and instructions.startswith(SAY_EXACTLY_PREFIX):
        _, sep, rest = instructions.partition("\n")
        if sep:
            return rest
    return None


@lru_cache(maxsize=32)
def audio_chunks_b64(audio_ms: int, delta_ms: int) -> tuple[str, ...]:
    """The synthetic speech of ``audio_ms`` cut into ``delta_ms`` pieces, base64 (cached)."""
    pcm = synth_speech(audio_ms)
    step = max(2, delta_ms * BYTES_PER_MS)
    return tuple(
        base64.b64encode(pcm[i : i + step]).decode("ascii") for i in range(0, len(pcm), step)
    )


def _usage(text: str, audio_ms: int = 0) -> dict[str, Any]:
    return ev.usage_block(480, max(1, len(text) // 4) + audio_ms // 50)


def _item_status(status: str) -> str:
    return "completed" if status == "completed" else "incomplete"


def _conversation_id(ctx: ReplyContext) -> str | None:
    return None if ctx.out_of_band else ev.CONVERSATION_ID


def _open(ctx: ReplyContext, item: dict[str, Any], modalities: list[str]) -> list[Step]:
    steps: list[Step] = [
        ev.response_created(
            ctx.response_id,
            output_modalities=modalities,
            conversation_id=_conversation_id(ctx),
        ),
        ev.rate_limits_updated(),
        ev.output_item_added(ctx.response_id, item),
    ]
    if not ctx.out_of_band:
        steps.append(ev.conversation_item_added(item, ctx.previous_item_id))
    return steps


def _close(
    ctx: ReplyContext,
    final_item: dict[str, Any],
    *,
    status: str,
    end: bool,
    done_delay_ms: float,
    modalities: list[str],
    usage: dict[str, Any],
) -> list[Step]:
    steps: list[Step] = [ev.output_item_done(ctx.response_id, final_item)]
    if not ctx.out_of_band:
        steps.append(ev.conversation_item_done(final_item, ctx.previous_item_id))
    if end:
        if done_delay_ms > 0:
            steps.append(Pause(done_delay_ms))
        steps.append(
            ev.response_done(
                ctx.response_id,
                status,
                output=[final_item],
                usage=usage,
                output_modalities=modalities,
                conversation_id=_conversation_id(ctx),
            )
        )
    return steps


def audio_reply_steps(
    ctx: ReplyContext,
    text: str,
    audio_ms: int,
    *,
    status: str = "completed",
    end: bool = True,
    done_delay_ms: float = 0.0,
) -> list[Step]:
    """The full event sequence of a spoken answer (see the module docstring)."""
    rid, iid = ctx.response_id, ctx.item_id
    steps = _open(ctx, ev.message_item(iid, status="in_progress"), ["audio"])
    steps.append(ev.content_part_added(rid, iid, {"type": "audio", "transcript": ""}))
    words = split_words(text)
    chunks = audio_chunks_b64(audio_ms, ctx.delta_ms) if audio_ms > 0 else ()
    for i in range(max(len(words), len(chunks))):
        if i < len(words):
            steps.append(ev.transcript_delta(rid, iid, words[i]))
        if i < len(chunks):
            steps.append(ev.audio_delta(rid, iid, b64=chunks[i]))
            if ctx.pacing_ms > 0 and i + 1 < len(chunks):
                steps.append(Pause(ctx.pacing_ms))
    steps.append(ev.audio_done(rid, iid))
    steps.append(ev.transcript_done(rid, iid, text))
    steps.append(ev.content_part_done(rid, iid, {"type": "audio", "transcript": text}))
    final = ev.message_item(
        iid, content=[{"type": "output_audio", "transcript": text}], status=_item_status(status)
    )
    steps += _close(
        ctx,
        final,
        status=status,
        end=end,
        done_delay_ms=done_delay_ms,
        modalities=["audio"],
        usage=_usage(text, audio_ms),
    )
    return steps


def text_reply_steps(
    ctx: ReplyContext,
    text: str,
    *,
    status: str = "completed",
    end: bool = True,
    done_delay_ms: float = 0.0,
) -> list[Step]:
    """The full event sequence of a text-only answer."""
    rid, iid = ctx.response_id, ctx.item_id
    steps = _open(ctx, ev.message_item(iid, status="in_progress"), ["text"])
    steps.append(ev.content_part_added(rid, iid, {"type": "text", "text": ""}))
    for word in split_words(text):
        steps.append(ev.text_delta(rid, iid, word))
        if ctx.pacing_ms > 0:
            steps.append(Pause(ctx.pacing_ms))
    steps.append(ev.text_done(rid, iid, text))
    steps.append(ev.content_part_done(rid, iid, {"type": "text", "text": text}))
    final = ev.message_item(
        iid, content=[{"type": "output_text", "text": text}], status=_item_status(status)
    )
    steps += _close(
        ctx,
        final,
        status=status,
        end=end,
        done_delay_ms=done_delay_ms,
        modalities=["text"],
        usage=_usage(text),
    )
    return steps


def function_call_steps(
    ctx: ReplyContext,
    name: str,
    arguments: str = "{}",
    *,
    end: bool = True,
    done_delay_ms: float = 0.0,
) -> list[Step]:
    """A response whose only output is a function call (as in ``function-call-turn.jsonl``)."""
    rid, iid, cid = ctx.response_id, ctx.item_id, ctx.call_id
    steps = _open(ctx, ev.function_call_item(iid, cid, name, "", status="in_progress"), ["audio"])
    half = len(arguments) // 2
    for piece in (arguments[:half], arguments[half:]):
        if piece:
            steps.append(ev.function_call_arguments_delta(rid, iid, cid, piece))
    steps.append(ev.function_call_done(rid, iid, cid, name, arguments))
    final = ev.function_call_item(iid, cid, name, arguments)
    steps += _close(
        ctx,
        final,
        status="completed",
        end=end,
        done_delay_ms=done_delay_ms,
        modalities=["audio"],
        usage=_usage(arguments),
    )
    return steps


def build_steps(spec: ReplySpec, ctx: ReplyContext, text: str, audio_ms: int) -> list[Step]:
    """The steps for ``spec``; ``text`` / ``audio_ms`` are the resolved defaults.

    :class:`ErrorReply` and :class:`NoReply` are handled by the caller (they need the request's
    ``event_id`` or produce nothing) and give an empty list here.
    """
    steps: list[Step]
    if isinstance(spec, AudioReply):
        steps = audio_reply_steps(
            ctx, text, audio_ms, status=spec.status, end=spec.end, done_delay_ms=spec.done_delay_ms
        )
    elif isinstance(spec, TextReply):
        steps = text_reply_steps(
            ctx, text, status=spec.status, end=spec.end, done_delay_ms=spec.done_delay_ms
        )
    elif isinstance(spec, FunctionCallReply):
        steps = function_call_steps(
            ctx, spec.name, spec.arguments, end=spec.end, done_delay_ms=spec.done_delay_ms
        )
    elif isinstance(spec, CustomReply):
        steps = list(spec.build(ctx))
    else:
        return []
    delay = getattr(spec, "delay_ms", 0.0)
    if delay > 0:
        steps.insert(0, Pause(delay))
    return steps
