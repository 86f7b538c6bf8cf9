"""An A2A agent on the real a2a-sdk server (JSON-RPC, 1.0 and the 0.3 compatibility endpoint).

Run by tests/test_producers_wave2.py with the a2a-sdk's own virtualenv
(``.tools/a2a-sdk-*``), never ours: ``python a2a_producer.py PORT``. The
executor answers the way ADK's A2A bridge does (the common real producer):
``adk_*`` metadata with the app name, usage-bearing model messages, tool calls
and results as ``data`` parts, and an ``adk_error_code`` before a failed task
when the question asks for a failure.
"""

from __future__ import annotations

import sys

import uvicorn
from a2a.helpers.proto_helpers import new_text_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events.event_queue_v2 import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Message,
    Part,
    Role,
    Task,
    TaskState,
    TaskStatus,
)
from google.protobuf import struct_pb2
from starlette.applications import Starlette

APP = "shipment-tracker"


def _usage(prompt: int, output: int) -> dict[str, float]:
    return {"promptTokenCount": prompt, "candidatesTokenCount": output, "totalTokenCount": prompt + output}


def _data(value: dict[str, object], kind: str) -> Part:
    """A ``data`` part as ADK's bridge sends a function call or response."""
    data = struct_pb2.Value()
    data.struct_value.update(value)
    part = Part(data=data)
    part.metadata.update({"adk_type": f"function_{kind}"})
    return part


def _meta(**extra: object) -> dict[str, object]:
    return {"adk_app_name": APP, "adk_author": APP, "adk_invocation_id": "e-producer-1", **extra}


class TrackerExecutor(AgentExecutor):
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task_id, context_id = context.task_id or "task", context.context_id or "ctx"
        question = context.get_user_input()
        await event_queue.enqueue_event(
            Task(
                id=task_id,
                context_id=context_id,
                status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                history=[context.message] if context.message else [],
            )
        )
        updater = TaskUpdater(event_queue, task_id, context_id)
        await updater.update_status(TaskState.TASK_STATE_WORKING, metadata={"adk_app_name": APP})
        call = _data({"id": "call_trk_1", "name": "lookup_tracking", "args": {"tracking_number": "JD0146"}}, "call")
        await updater.update_status(
            TaskState.TASK_STATE_WORKING,
            message=self._agent_message(context_id, task_id, [Part(text="Checking the carrier feed."), call]),
            metadata=_meta(adk_usage_metadata=_usage(512, 64)),
        )
        if "fail" in question:
            await updater.update_status(
                TaskState.TASK_STATE_WORKING,
                message=self._agent_message(context_id, task_id, []),
                metadata=_meta(adk_error_code="TimeoutError", adk_error_message="carrier feed timed out"),
            )
            await updater.failed(new_text_message("carrier feed timed out", context_id=context_id, task_id=task_id))
            return
        response = {"id": "call_trk_1", "name": "lookup_tracking", "response": {"status": "in_transit"}}
        result = _data(response, "response")
        await updater.update_status(
            TaskState.TASK_STATE_WORKING, message=self._agent_message(context_id, task_id, [result]), metadata=_meta()
        )
        await updater.add_artifact([Part(text="In transit, ")], artifact_id="answer", name="delivery_estimate")
        await updater.add_artifact(
            [Part(text="arriving on 3 Dec.")],
            artifact_id="answer",
            append=True,
            last_chunk=True,
            metadata=_meta(adk_usage_metadata=_usage(1348, 97)),
        )
        await updater.complete()

    @staticmethod
    def _agent_message(context_id: str, task_id: str, parts: list[Part]) -> Message:
        message = Message(message_id=f"msg-{task_id}-{len(parts)}", context_id=context_id, task_id=task_id)
        message.role = Role.ROLE_AGENT
        message.parts.extend(parts)
        return message

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError


def app(port: int) -> Starlette:
    card = AgentCard(
        name=APP,
        description="Tracks parcels.",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(url=f"http://127.0.0.1:{port}/", protocol_binding="JSONRPC", protocol_version="1.0")
        ],
        skills=[AgentSkill(id="track", name="track", description="Where a parcel is.", tags=["parcels"])],
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
    )
    handler = DefaultRequestHandler(agent_executor=TrackerExecutor(), task_store=InMemoryTaskStore(), agent_card=card)
    routes = create_agent_card_routes(card) + create_jsonrpc_routes(handler, "/", enable_v0_3_compat=True)
    return Starlette(routes=routes)


if __name__ == "__main__":
    port = int(sys.argv[1])
    uvicorn.run(app(port), host="127.0.0.1", port=port, log_level="warning")
