import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyDirectory, generateKey, limitsForModel } from '../../src/keys/directory.js';

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
    expect(key && limitsForModel(key, 'chat-gpt-35-turbo')?.limits).toEqual({});
    expect(key && limitsForModel(key, 'chat:openai.com/gpt-4o-mini')).toEqual({ name: 'gpt-4o-mini', limits: { minute: 20000, day: 500000, requestHour: 100, requestDay: 1000 } });
    expect(key && limitsForModel(key, 'gpt-4')).toBeUndefined();
    expect(dir.find('proxyKey2')).toBeUndefined();
    expect(dir.warnings[0]).toMatch(/shorter than 22 chars/);
    expect(dir.warnings.join()).not.toContain('proxyKey1');
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
    expect(key && limitsForModel(key, 'm')?.limits).toEqual({ minute: 100, requestDay: 5 });
    expect(key && limitsForModel(key, 'only')?.limits).toEqual({ day: 1 });
    expect(key && limitsForModel(key, 'n')?.limits).toEqual({});
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
