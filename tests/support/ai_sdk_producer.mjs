// The Vercel AI SDK's UI message stream, served by the SDK itself with its mock model.
//
// Run by tests/test_producers_wave2.py with Node 22 and the `ai` package from their own
// folder (.tools/ai-sdk-*), never ours: `node ai_sdk_producer.mjs PORT`. POST /chat runs
// `streamText` with `MockLanguageModelV4` (no network) for two steps: the model asks for two
// tools (one of them throws), the SDK runs them, then the model answers. The app attaches
// the model and usage as message metadata: each step's after its `finish-step`, the total on
// `finish`.
import http from 'node:http';
import { jsonSchema, simulateReadableStream, stepCountIs, streamText, tool } from 'ai';
import { MockLanguageModelV4 } from 'ai/test';

const usage = (input, output) => ({
  inputTokens: { total: input, noCache: input, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: output, text: output, reasoning: undefined },
});

const steps = [
  [
    { type: 'stream-start', warnings: [] },
    { type: 'response-metadata', id: 'resp-1', modelId: 'mock-model-1', timestamp: new Date(0) },
    { type: 'tool-call', toolCallId: 'call_fc_1', toolName: 'get_forecast', input: '{"city":"Lisbon"}' },
    { type: 'tool-call', toolCallId: 'call_bag_2', toolName: 'check_baggage_rules', input: '{"airline":"TP"}' },
    { type: 'finish', finishReason: { unified: 'tool-calls', raw: undefined }, usage: usage(820, 41) },
  ],
  [
    { type: 'stream-start', warnings: [] },
    { type: 'response-metadata', id: 'resp-2', modelId: 'mock-model-1', timestamp: new Date(0) },
    { type: 'text-start', id: 't1' },
    { type: 'text-delta', id: 't1', delta: 'Pack a light ' },
    { type: 'text-delta', id: 't1', delta: 'rain jacket.' },
    { type: 'text-end', id: 't1' },
    { type: 'finish', finishReason: { unified: 'stop', raw: undefined }, usage: usage(903, 30) },
  ],
];

function model() {
  let call = 0;
  return new MockLanguageModelV4({
    provider: 'mock-provider',
    modelId: 'mock-model-1',
    doStream: async () => ({ stream: simulateReadableStream({ chunks: steps[Math.min(call++, steps.length - 1)] }) }),
  });
}

const tools = {
  get_forecast: tool({
    description: 'The forecast for a city.',
    inputSchema: jsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
    execute: async ({ city }) => ({ city, rain: ['Sun'] }),
  }),
  check_baggage_rules: tool({
    description: "An airline's baggage rules.",
    inputSchema: jsonSchema({ type: 'object', properties: { airline: { type: 'string' } }, required: ['airline'] }),
    execute: async () => {
      throw new Error('baggage rules service unavailable (HTTP 503)');
    },
  }),
};

const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/chat') {
    res.writeHead(404).end();
    return;
  }
  req.resume();
  req.on('end', () => {
    const result = streamText({ model: model(), tools, prompt: 'What should I pack for Lisbon?', stopWhen: stepCountIs(3) });
    result.pipeUIMessageStreamToResponse(res, {
      messageMetadata: ({ part }) => {
        if (part.type === 'finish-step') return { model: part.response.modelId, usage: part.usage };
        if (part.type === 'finish') return { totalUsage: part.totalUsage };
        return undefined;
      },
    });
  });
});
server.listen(Number(process.argv[2]), '127.0.0.1');
