// The feed's UI forms read by the real clients: a stock AG-UI HttpAgent and the AI SDK's reader.
//
// Run by tests/test_agui_clients.py and tests/test_ai_sdk_stream.py with Node 22:
//   node ui_clients.mjs JOBS.json
// with AGUI_CLIENT (the @ag-ui/client package folder) and AI_SDK (the `ai` package folder) in the
// environment. JOBS.json is a list of {id, kind, url, threadId?, runId?}; every job starts at once
// (the test waits until the sidecar counts their subscriptions, then posts), and one JSON line per
// job is printed when it ends:
//   agui-get   a stock HttpAgent changed only to GET (its requestInit), url = ...?format=ag-ui&run_id=...
//   agui-post  a stock HttpAgent, unchanged: it POSTs its RunAgentInput {threadId, runId}
//   ai-sdk     fetch + the SDK's own parseJsonEventStream(uiMessageChunkSchema) + readUIMessageStream
// Both AG-UI jobs run the client's whole pipeline (schema check, verifyEvents, defaultApplyEvents):
// a stream it refuses fails runAgent(), and the job reports the client's error.
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import path from 'node:path';

process.env.SUPPRESS_TRANSFORMATION_WARNINGS = 'true';
const agui = await import(pathToFileURL(path.join(process.env.AGUI_CLIENT, 'dist/index.mjs')).href);
const ai = await import(pathToFileURL(path.join(process.env.AI_SDK, 'dist/index.js')).href);

class GetAgent extends agui.HttpAgent {
  requestInit() {
    return { method: 'GET', headers: { Accept: 'text/event-stream' }, signal: this.abortController.signal };
  }
}

async function runAgui(job) {
  const Agent = job.kind === 'agui-get' ? GetAgent : agui.HttpAgent;
  const agent = new Agent({ url: job.url, threadId: job.threadId ?? 'thread' });
  const events = [];
  const errors = [];
  const origError = console.error;
  console.error = (...args) => errors.push(args.map(String).join(' '));
  try {
    await agent.runAgent({ runId: job.runId }, {
      onEvent: ({ event }) => { events.push({ type: event.type, metadata: event.metadata }); },
    });
    return { ok: true, messages: agent.messages, state: agent.state, events };
  } catch (err) {
    return { ok: false, error: String(err?.message ?? err), events, logged: errors };
  } finally {
    console.error = origError;
  }
}

async function runAiSdk(job) {
  const response = await fetch(job.url, { headers: { Accept: 'text/event-stream' } });
  const header = response.headers.get('x-vercel-ai-ui-message-stream');
  if (!response.ok) return { ok: false, error: `HTTP ${response.status}: ${await response.text()}` };
  const chunks = ai.parseJsonEventStream({ stream: response.body, schema: ai.uiMessageChunkSchema }).pipeThrough(
    new TransformStream({
      transform(chunk, controller) {
        if (!chunk.success) throw chunk.error;
        controller.enqueue(chunk.value);
      },
    }),
  );
  const errors = [];
  let message;
  try {
    for await (const snapshot of ai.readUIMessageStream({ stream: chunks, onError: (e) => errors.push(String(e?.message ?? e)) })) {
      message = snapshot;
    }
  } catch (err) {
    return { ok: false, error: String(err?.message ?? err), message, errors, header };
  }
  return { ok: true, message, errors, header };
}

const jobs = JSON.parse(await readFile(process.argv[2], 'utf8'));
await Promise.all(
  jobs.map(async (job) => {
    let result;
    try {
      result = job.kind === 'ai-sdk' ? await runAiSdk(job) : await runAgui(job);
    } catch (err) {
      result = { ok: false, error: String(err?.stack ?? err) };
    }
    process.stdout.write(JSON.stringify({ id: job.id, ...result }) + '\n');
  }),
);
