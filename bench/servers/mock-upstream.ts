import { createServer } from 'node:http';

/**
 * The benchmark's OpenAI-compatible upstream: a fixed answer as fast as node:http can give it.
 * It records nothing (the test mock does, which would grow under load). Streams send a few
 * chunks, spaced by STREAM_CHUNK_DELAY_MS (0 = back to back), then [DONE].
 */
const port = Number(process.env.PORT ?? 0);
const chunkDelayMs = Number(process.env.STREAM_CHUNK_DELAY_MS ?? 0);
const CHUNKS = Number(process.env.STREAM_CHUNKS ?? 5);

const completion = JSON.stringify({
  id: 'chatcmpl-bench',
  object: 'chat.completion',
  created: 1_700_000_000,
  model: 'gpt-4o-mini',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hello from the benchmark upstream.' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 9, completion_tokens: 7, total_tokens: 16 },
});

function chunk(i: number): string {
  const delta = i === 0 ? { role: 'assistant', content: 'Hello ' } : { content: `part${i} ` };
  return `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-4o-mini', choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`;
}

const server = createServer((req, res) => {
  const body: Buffer[] = [];
  req.on('data', (c: Buffer) => body.push(c));
  req.on('end', () => {
    const stream = Buffer.concat(body).includes('"stream":true');
    if (!stream) {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(completion) });
      res.end(completion);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    let i = 0;
    const next = (): void => {
      if (res.destroyed) return;
      if (i < CHUNKS) {
        res.write(chunk(i++));
        if (chunkDelayMs > 0) setTimeout(next, chunkDelayMs);
        else next();
        return;
      }
      res.end('data: [DONE]\n\n');
    };
    next();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => {
  const address = server.address();
  console.log(JSON.stringify({ listening: typeof address === 'object' && address ? address.port : port }));
});
