import express from 'express';
import { Pool } from 'undici';

/** Baseline 3: a minimal Express 5 + undici proxy (JSON body parsed and forwarded; no auth, no quota). */
const upstream = new Pool(process.env.UPSTREAM_URL ?? 'http://127.0.0.1:1', { connections: 128 });

const app = express();
app.post('/v1/chat/completions', express.json({ limit: '1mb' }), async (req, res) => {
  try {
    const answer = await upstream.request({
      method: 'POST',
      path: '/v1/chat/completions',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench' },
      body: JSON.stringify(req.body),
    });
    res.status(answer.statusCode).type(String(answer.headers['content-type'] ?? 'application/json'));
    for await (const c of answer.body) res.write(c);
    res.end();
  } catch {
    res.status(502).end();
  }
});
const server = app.listen(0, '127.0.0.1', () => {
  const address = server.address();
  console.log(JSON.stringify({ listening: typeof address === 'object' && address ? address.port : 0 }));
});
server.keepAliveTimeout = 60_000;
