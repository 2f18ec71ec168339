"""Client messages in READY (PROTOCOL.md §7): transitions T1-T7 of the sequencer table.

Decoding and the phase rules (held before READY, §3.3) are the lifecycle's job
(fastproxy.protocol.session); by the time a message reaches ``process_client_message`` the
connection is READY and the message is well formed.
"""

from __future__ import annotations

from typing import Any

import msgspec

from fastproxy import messages as m
from fastproxy.protocol.sequencer import Reply, Scripted, Sequencer, ToolReply, Update, join
from fastproxy.protocol.settings_map import speak_voice


class ClientMessages(Sequencer):
    def process_client_message(self, msg: m.ClientMessage) -> None:
        if isinstance(msg, m.InjectUserMessage):
            self.t1_inject_user(msg.content)
        elif isinstance(msg, m.FunctionCallResponse):
            self.t2_t3_function_call_response(msg)
        elif isinstance(msg, m.UpdatePrompt):
            self.t4_update_prompt(msg.prompt)
        elif isinstance(msg, m.UpdateSpeak):
            self.t5_update_speak(msg.speak)
        elif isinstance(msg, m.InjectAgentMessage):
            self.t6_t7_inject_agent(m.inject_agent_text(msg))
        elif isinstance(msg, m.Settings):
            self.send_client(m.SettingsApplied())  # a later Settings (§4.1)

    # -- §7.5 ---------------------------------------------------------------------------------

    def t1_inject_user(self, content: str) -> None:
        item = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": content}],
        }
        item_id = self.create_item(item, "item")
        self.send_text("user", content)
        if self.enqueue(Reply((item_id,), self.s.now)):
            self.pump()

    # -- §7.7 ---------------------------------------------------------------------------------

    def t2_t3_function_call_response(self, msg: m.FunctionCallResponse) -> None:
        s = self.s
        output = function_output(msg.content)
        item = {"type": "function_call_output", "call_id": msg.id, "output": output}
        item_id = self.create_item(item, "item")
        self.send_client(m.AgentThinking())
        call = s.calls.get(msg.id)
        if call is not None:
            name, arguments = call.name, call.arguments
        else:
            name = msg.name if isinstance(msg.name, str) else ""
            arguments = ""
        if s.history:
            fc = m.HistoryFunctionCall(msg.id, name, True, arguments, output)
            self.send_client(m.History(function_calls=[fc]))
        if call is None:  # T3
            if self.enqueue(Reply((item_id,), s.now)):
                self.pump()
            return
        if call.output_item is not None:  # a repeated result adds no entry (T2)
            self.pump()
            return
        call.output_item = item_id
        queued = next(
            (e for e in s.fifo if isinstance(e, ToolReply) and e.epoch == call.epoch), None
        )
        if queued is not None:
            queued.t0 = s.now  # t0 of a tool turn: the last result for its calls (§8.3)
        elif not self.enqueue(ToolReply(call.epoch, s.now)):
            return
        self.pump()

    # -- §7.3 / §7.4 ----------------------------------------------------------------------------

    def t4_update_prompt(self, prompt: str) -> None:
        s = self.s
        s.prompt_counter += 1
        s.prompt_updates.append((s.prompt_counter, prompt))
        if self.enqueue(Update("prompt", uid=s.prompt_counter)):
            self.pump()

    def current_instructions(self) -> str:
        text = self.s.instructions
        for _, update in self.s.prompt_updates:
            text = join(text, update)
        return text

    def build_prompt_update(self) -> dict[str, Any]:
        session = {"type": "realtime", "instructions": self.current_instructions()}
        return {"type": "session.update", "session": session}

    def t5_update_speak(self, speak: Any) -> None:
        voice = speak_voice(speak)
        if voice is None:
            self.send_warning(
                "settings_field_ignored",
                "speak.provider.voice: expected a non-blank string; nothing was updated",
            )
            return
        if self.enqueue(Update("speak", voice=voice)):
            self.pump()

    # -- §7.6 ---------------------------------------------------------------------------------

    def t6_t7_inject_agent(self, text: str) -> None:
        s = self.s
        if s.user_speaking or s.busy:
            reason = "the user is speaking" if s.user_speaking else "the agent is busy"
            self.send_client(m.InjectionRefused(message=f"InjectAgentMessage refused: {reason}"))
            return
        item = {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text}],
        }
        self.create_item(item, "item")
        self.send_text("assistant", text)
        if self.enqueue(Scripted(text)):
            self.pump()


def function_output(content: Any) -> str:
    """§7.7: a string as is; absent or null → ""; any other JSON value compactly encoded."""
    if isinstance(content, str):
        return content
    if content is None or content is msgspec.UNSET:
        return ""
    return msgspec.json.encode(content).decode()
