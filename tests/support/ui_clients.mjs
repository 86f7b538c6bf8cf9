// The feed's UI forms read by the real clients: a stock AG-UI HttpAgent and the AI SDK's reader.
//
// Run by tests/test_agui_clients.py and tests/test_ai_sdk_stream.py with Node 22:
//   node ui_clients.mjs JOBS.json
// with AGUI_CLIENT (the @ag-ui/client package folder) and AI_SDK (the `ai` package folder) in the
// environment. JOBS.json is a list of {id, kind, url, threadId?, runId?}; every job starts at once
// (the test waits until the sidecar counts their subscriptions, then posts), and one JSON line per
// job is printed when it ends. A job marked `open` (a run its capture never ends) is stopped one
// second after the test writes a line to stdin (everything is posted), and reports what it had:
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

// Stopping open jobs: each registers its abort here; a line on stdin (everything posted) fires them.
// A job still running 20 s after that has hung: it is stopped and reported as a failure.
const stoppers = [];
const hangs = [];
let posted = false;
process.stdin.on('data', () => {
  posted = true;
  setTimeout(() => stoppers.forEach((stop) => stop()), 1000);
  setTimeout(() => hangs.forEach((stop) => stop()), 20000).unref();
});
function whenPosted(stop) {
  if (posted) setTimeout(stop, 1000);
  else stoppers.push(stop);
}

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
  let stopped = false;
  let hung = false;
  let watching = false;
  hangs.push(() => { hung = true; agent.abortRun(); });
  const origError = console.error;
  console.error = (...args) => errors.push(args.map(String).join(' '));
  try {
    await agent.runAgent({ runId: job.runId }, {
      onEvent: ({ event }) => {
        events.push({ type: event.type, name: event.name, metadata: event.metadata });
        if (job.open && !watching) {
          watching = true;
          whenPosted(() => { stopped = true; agent.abortRun(); });
        }
      },
    });
    if (hung) return { ok: false, error: 'runAgent() did not resolve within 20 s of the posts', events };
    return { ok: true, stopped, messages: agent.messages, state: agent.state, events };
  } catch (err) {
    if (stopped) return { ok: true, stopped, messages: agent.messages, state: agent.state, events };
    return { ok: false, error: String(err?.message ?? err), events, logged: errors };
  } finally {
    console.error = origError;
  }
}

async function runAiSdk(job) {
  const abort = new AbortController();
  let stopped = false;
  let hung = false;
  hangs.push(() => { hung = true; abort.abort(); });
  const response = await fetch(job.url, { headers: { Accept: 'text/event-stream' }, signal: abort.signal });
  if (job.open) whenPosted(() => { stopped = true; abort.abort(); });
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
    if (hung) return { ok: false, error: 'the stream did not end within 20 s of the posts', message, errors };
    if (stopped) return { ok: true, stopped, message, errors, header };
    return { ok: false, error: String(err?.message ?? err), message, errors, header };
  }
  if (hung) return { ok: false, error: 'the stream did not end within 20 s of the posts', message, errors };
  return { ok: true, stopped, message, errors, header };
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
// process.exit drops what a pipe has not taken yet (a large result is written in pieces): let the writes
// above reach the pipe first. Exiting, not waiting for the event loop to empty, ends the clients' sockets.
await new Promise((resolve) => process.stdout.write('', resolve));
process.exit(0);
