import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { MemoryQuotaStore } from '../src/quota/memory-store.js';
import { planForToken, type QuotaPlan } from '../src/quota/plan.js';
import { RedisQuotaStore } from '../src/quota/redis-store.js';
import type { QuotaStore } from '../src/quota/store.js';
import { mintToken, openToken } from '../src/token/codec.js';
import { Keyring } from '../src/token/keyring.js';
import { TokenVerifier } from '../src/token/verifier.js';

/** Operations per second of `op`, run `concurrency` at a time for about `ms` milliseconds. */
async function opsPerSec(op: (i: number) => Promise<unknown>, concurrency: number, ms: number): Promise<number> {
  let done = 0;
  const started = performance.now();
  const deadline = started + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) await op(done++);
    }),
  );
  return done / ((performance.now() - started) / 1000);
}

const SIX_WINDOWS = {
  perClientRequestLimits: { requestsPerMinute: 1e9, requestsPerHour: 1e9, requestsPerDay: 1e9 },
  globalRequestLimits: { requestsPerMinute: 1e9, requestsPerHour: 1e9, requestsPerDay: 1e9 },
};

export interface MicroResults {
  tokenOpenFirstSightPerSec: number;
  tokenOpenFirstSight16PerSec: number;
  tokenOpenRepeatedPerSec: number;
  quotaMemory1PerSec: number;
  quotaMemory64PerSec: number;
  quotaRedis1PerSec: number;
  quotaRedis64PerSec: number;
  /** baseline: the same six windows as six separate rate-limiter-flexible Redis calls */
  rlfSixCallsRedis64PerSec: number;
}

export async function runMicro(redisUrl: string, ms = 1500): Promise<MicroResults> {
  const keyring = new Keyring(randomBytes(32).toString('base64url'));
  const minted = await Promise.all(
    Array.from({ length: 2000 }, () => mintToken({ host: 'bench', requestQuotas: SIX_WINDOWS, serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: 'sk-bench' }], lifetimeSeconds: 3600 }, keyring, Date.now())),
  );
  const tokens = minted.map((m) => m.token);
  const now = Date.now();
  const firstSight = (i: number) => openToken(tokens[i % tokens.length] ?? '', keyring, now);
  const tokenOpenFirstSightPerSec = await opsPerSec(firstSight, 1, ms);
  // decryption runs on libuv's thread pool: with requests in flight, several run at once
  const tokenOpenFirstSight16PerSec = await opsPerSec(firstSight, 16, ms);
  const verifier = new TokenVerifier(keyring, Date.now);
  await verifier.open(tokens[0] ?? '');
  const tokenOpenRepeatedPerSec = await opsPerSec(() => verifier.open(tokens[0] ?? ''), 1, ms);

  const claims = minted[0]?.claims;
  if (!claims) throw new Error('no token minted');
  const plans: QuotaPlan[] = Array.from({ length: 64 }, (_, i) => planForToken({ ...claims, jti: randomBytes(16).toString('base64url') }, `10.0.0.${i}`));
  const checks = (store: QuotaStore) => (i: number) => store.consume(plans[i % plans.length] as QuotaPlan, Date.now());

  const memory = new MemoryQuotaStore();
  const quotaMemory1PerSec = await opsPerSec(checks(memory), 1, ms);
  const quotaMemory64PerSec = await opsPerSec(checks(memory), 64, ms);
  await memory.close();

  const redis = new Redis(redisUrl, { enableAutoPipelining: true });
  const redisStore = new RedisQuotaStore(redis);
  const quotaRedis1PerSec = await opsPerSec(checks(redisStore), 1, ms);
  const quotaRedis64PerSec = await opsPerSec(checks(redisStore), 64, ms);

  const limiters = ['m', 'h', 'd', 'gm', 'gh', 'gd'].map(
    (name, i) => new RateLimiterRedis({ storeClient: redis, keyPrefix: `bench-rlf-${name}`, points: 1e9, duration: [60, 3600, 86400][i % 3] ?? 60 }),
  );
  const rlfSixCallsRedis64PerSec = await opsPerSec((i) => Promise.all(limiters.map((l) => l.consume(`client-${i % 64}`))), 64, ms);
  redis.disconnect();

  return { tokenOpenFirstSightPerSec, tokenOpenFirstSight16PerSec, tokenOpenRepeatedPerSec, quotaMemory1PerSec, quotaMemory64PerSec, quotaRedis1PerSec, quotaRedis64PerSec, rlfSixCallsRedis64PerSec };
}
