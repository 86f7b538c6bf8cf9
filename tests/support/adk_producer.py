"""Google ADK agents on ADK's own FastAPI app (``/run_sse``), with a scripted model.

Run by tests/test_producers_wave2.py with ADK's own virtualenv
(``.tools/google-adk-*``), never ours: ``python adk_producer.py PORT DIR``
writes two agent apps into DIR and serves them:

* ``kitchen``: ``kitchen_host`` streams a sentence and transfers to its
  sub-agent ``pantry_chef`` (ADK's own ``transfer_to_agent``), which calls
  ``find_recipes`` and streams the answer;
* ``stock``: ``stock_clerk`` calls ``check_stock``, which raises: ADK aborts
  the run.

The model is a :class:`BaseLlm` that replays a script (no network): streamed
answers come as partial chunks, then the whole answer with its usage.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import uvicorn
from google.adk.cli.fast_api import get_fast_api_app

MODEL_MODULE = '''
from typing import Any, AsyncGenerator

from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.genai import types


def usage(prompt: int, output: int) -> types.GenerateContentResponseUsageMetadata:
    return types.GenerateContentResponseUsageMetadata(
        prompt_token_count=prompt, candidates_token_count=output, total_token_count=prompt + output
    )


class ScriptedLlm(BaseLlm):
    """Each call answers with the next step: ("text", [chunks], usage) or ("call", name, args, usage)."""

    script: list[Any] = []
    step: int = 0

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        kind, *rest = self.script[min(self.step, len(self.script) - 1)]
        self.step += 1
        if kind == "call":
            name, args, used = rest
            part = types.Part(function_call=types.FunctionCall(name=name, args=args))
            yield LlmResponse(
                content=types.Content(role="model", parts=[part]),
                usage_metadata=used,
                finish_reason=types.FinishReason.STOP,
                model_version=self.model,
            )
            return
        chunks, used = rest
        if stream:
            for chunk in chunks:
                yield LlmResponse(
                    content=types.Content(role="model", parts=[types.Part(text=chunk)]),
                    partial=True,
                    model_version=self.model,
                )
        yield LlmResponse(
            content=types.Content(role="model", parts=[types.Part(text="".join(chunks))]),
            usage_metadata=used,
            finish_reason=types.FinishReason.STOP,
            model_version=self.model,
        )
'''

KITCHEN = '''
from google.adk.agents import LlmAgent

from .scripted import ScriptedLlm, usage


def find_recipes(ingredients: list[str]) -> dict:
    """Recipes that use the ingredients."""
    return {"recipes": ["Chickpea curry"]}


pantry_chef = LlmAgent(
    name="pantry_chef",
    model=ScriptedLlm(model="scripted-flash-lite", script=[
        ("call", "find_recipes", {"ingredients": ["chickpeas"]}, usage(655, 31)),
        ("text", ["Try the ", "chickpea curry."], usage(802, 40)),
    ]),
    instruction="Suggest recipes.",
    tools=[find_recipes],
)
root_agent = LlmAgent(
    name="kitchen_host",
    model=ScriptedLlm(model="scripted-flash", script=[
        ("call", "transfer_to_agent", {"agent_name": "pantry_chef"}, usage(310, 22)),
    ]),
    instruction="Route cooking questions.",
    sub_agents=[pantry_chef],
)
'''

STOCK = '''
from google.adk.agents import LlmAgent

from .scripted import ScriptedLlm, usage


def check_stock(sku: str) -> dict:
    """Units in stock."""
    raise ConnectionError("stock service unreachable")


root_agent = LlmAgent(
    name="stock_clerk",
    model=ScriptedLlm(model="scripted-flash", script=[
        ("call", "check_stock", {"sku": "PAN-3312"}, usage(240, 18)),
        ("text", ["unreachable"], usage(300, 5)),
    ]),
    instruction="Check stock.",
    tools=[check_stock],
)
'''


def write_agents(root: Path) -> None:
    for app, source in (("kitchen", KITCHEN), ("stock", STOCK)):
        folder = root / app
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "__init__.py").write_text("from . import agent\n")
        (folder / "scripted.py").write_text(textwrap.dedent(MODEL_MODULE))
        (folder / "agent.py").write_text(textwrap.dedent(source))


if __name__ == "__main__":
    port, agents = int(sys.argv[1]), Path(sys.argv[2])
    write_agents(agents)
    app = get_fast_api_app(agents_dir=str(agents), web=False, auto_create_session=True, port=port)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
