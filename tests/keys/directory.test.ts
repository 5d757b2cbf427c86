import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyDirectory, generateKey, limitsForModel, type OperatorKey } from '../../src/keys/directory.js';
import { buildRegistry } from '../../src/services/catalog.js';
import { DEFAULT_DEFAULTS } from '../../src/services/registry.js';

// the built-in services and an Azure-style one: role entries are matched against resolved models
const registry = buildRegistry({ 'chat:azure': { kind: 'openai', baseUrl: 'http://127.0.0.1:9/openai', auth: 'api-key' } }, DEFAULT_DEFAULTS, { openaiBaseUrl: 'http://127.0.0.1:9/v1', openaiApiKey: undefined, anthropicBaseUrl: 'http://127.0.0.1:9', anthropicApiKey: undefined, env: {} });

function limitsOf(key: OperatorKey | undefined, model: string): ReturnType<typeof limitsForModel> {
  return key && limitsForModel(key, registry.resolveModel(model));
}

const DIAL_EXAMPLE = {
  keys: { proxyKey1: { project: 'Project1', role: 'default' } },
  roles: { default: { limits: { 'chat-gpt-35-turbo': {}, 'gpt-4o-mini': { minute: 20000, day: 500000, requestHour: 100, requestDay: 1000 } } } },
};

function directory(section: unknown): KeyDirectory {
  const result = KeyDirectory.parse(section);
  if ('problems' in result) throw new Error(result.problems.join('\n'));
  return result.directory;
}

function problems(section: unknown): string[] {
  const result = KeyDirectory.parse(section);
  return 'problems' in result ? result.problems : [];
}

describe('operator key directory', () => {
  it('reads the AI DIAL example: a listed model with empty limits is unlimited, an unlisted one is not allowed', () => {
    const dir = directory(DIAL_EXAMPLE);
    const key = dir.find('proxyKey1');
    expect(key?.project).toBe('Project1');
    expect(limitsOf(key, 'chat-gpt-35-turbo')?.limits).toEqual({});
    expect(limitsOf(key, 'chat:openai.com/gpt-4o-mini')).toEqual({ name: 'gpt-4o-mini', limits: { minute: 20000, day: 500000, requestHour: 100, requestDay: 1000 } });
    expect(limitsOf(key, 'gpt-4')).toBeUndefined();
    expect(dir.find('proxyKey2')).toBeUndefined();
    expect(dir.warnings[0]).toMatch(/shorter than 22 chars/);
    expect(dir.warnings.join()).not.toContain('proxyKey1');
  });

  it('a role entry grants exactly what it names: a bare model of the default service, <serviceId>/<model>, or a service', () => {
    const key = directory({
      keys: { 'a-long-enough-operator-key-0002': { project: 'P', role: 'r' } },
      roles: { r: { limits: { 'gpt-4o-mini': { requestMinute: 3 }, 'chat:dummy': {}, 'chat:azure/gpt-4o': { requestDay: 9 } } } },
    }).find('a-long-enough-operator-key-0002');
    const granted: [string, string | undefined][] = [
      ['gpt-4o-mini', 'gpt-4o-mini'],
      ['chat:openai.com/gpt-4o-mini', 'gpt-4o-mini'],
      ['chat:dummy', 'chat:dummy'],
      ['chat:dummy/anything', 'chat:dummy'],
      ['chat:azure/gpt-4o', 'chat:azure/gpt-4o'],
      // the last path segment is no way around the list (the review's bypasses)
      ['chat:azure/chat:dummy', undefined],
      ['chat:openai.com/chat:dummy', undefined],
      ['chat:azure/gpt-4o-mini', undefined],
      ['chat:azure/x/gpt-4o-mini', undefined],
      ['chat:azure/gpt-4o/extra', undefined],
      ['chat:echo/chat:dummy', undefined],
      ['gpt-4o', undefined],
    ];
    for (const [model, entry] of granted) expect([model, limitsOf(key, model)?.name]).toEqual([model, entry]);
    // the limits counted are the entry's
    expect(limitsOf(key, 'chat:openai.com/gpt-4o-mini')?.limits).toEqual({ requestMinute: 3 });
  });

  it('finds hashed keys by the key, and the config holds no usable secret', () => {
    const { key, hashed } = generateKey();
    expect(key.length).toBeGreaterThanOrEqual(32);
    expect(hashed).toBe(`sha256:${createHash('sha256').update(key).digest('hex')}`);
    const dir = directory({ keys: { [hashed]: { project: 'P', role: 'r' } }, roles: { r: { limits: { m: {} } } } });
    expect(dir.find(key)?.project).toBe('P');
    expect(dir.find(hashed)).toBeUndefined();
    expect(dir.warnings).toEqual([]);
  });

  it('several roles: the most generous limit wins, field by field, and unlimited beats any number', () => {
    const dir = directory({
      keys: { 'a-long-enough-operator-key-0001': { project: 'P', roles: ['small', 'big', 'open'] } },
      roles: {
        small: { limits: { m: { minute: 10, requestDay: 5 }, only: { day: 1 } } },
        big: { limits: { m: { minute: 100, requestDay: 2, requestHour: 7 } } },
        open: { limits: { n: {} } },
      },
    });
    const key = dir.find('a-long-enough-operator-key-0001');
    // requestHour is missing in "small", so small's m is unlimited per hour
    expect(limitsOf(key, 'm')?.limits).toEqual({ minute: 100, requestDay: 5 });
    expect(limitsOf(key, 'only')?.limits).toEqual({ day: 1 });
    expect(limitsOf(key, 'n')?.limits).toEqual({});
  });

  it('refuses a key without project, without role, or with a role that does not exist, naming the key by hash only', () => {
    const found = problems({
      keys: {
        'key-without-project-000000000': { role: 'r' },
        'key-without-role-0000000000000': { project: 'P' },
        'key-with-missing-role-00000000': { project: 'P', roles: ['r', 'ghost'] },
      },
      roles: { r: { limits: {} } },
    });
    expect(found).toHaveLength(3);
    expect(found[0]).toMatch(/^keys\[sha256:[0-9a-f]{12}…\]\.project: must name a project$/);
    expect(found[1]).toMatch(/must name a role/);
    expect(found[2]).toMatch(/role "ghost" does not exist/);
    expect(found.join('\n')).not.toMatch(/key-with|key-without/);
  });

  it('refuses unknown or bad limit fields, naming role and model', () => {
    const found = problems({ keys: {}, roles: { r: { limits: { m: { minutes: 5 } } }, s: { limits: { m: { day: -1 } } } } });
    expect(found).toEqual([expect.stringMatching(/^roles\.r\.limits\.m: Unrecognized key: "minutes"/), expect.stringMatching(/^roles\.s\.limits\.m\.day: must be a positive integer/)]);
  });
});
