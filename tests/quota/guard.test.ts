import { describe, expect, it } from 'vitest';
import { clientOf } from '../../src/quota/guard.js';

describe('clientOf: the client a per-client quota counts', () => {
  it('an IPv6 address is its /64, written the same in every notation', () => {
    const table: [string, string][] = [
      ['2001:db8:1:2::1', '2001:db8:1:2::/64'],
      ['2001:DB8:1:2:ffff:ffff:ffff:ffff', '2001:db8:1:2::/64'],
      ['2001:0db8:0001:0002:0000:0000:0000:abcd', '2001:db8:1:2::/64'],
      // "::" inside the first four groups (the review's case): two zero groups here
      ['2001::5:1:2:3:4', '2001:0:0:5::/64'],
      ['2001::6:1:2:3:4', '2001:0:0:6::/64'],
      ['2001:0:0:5::9', '2001:0:0:5::/64'],
      ['::1', '::/64'],
      ['::', '::/64'],
      ['fe80::1%eth0', 'fe80::/64'],
      ['2001:db8::', '2001:db8::/64'],
      ['1:2:3:4:5:6:7:8', '1:2:3:4::/64'],
      ['::ffff:0:1.2.3.4', '::/64'],
    ];
    for (const [address, client] of table) expect([address, clientOf(address)]).toEqual([address, client]);
  });

  it('an IPv4 address, also mapped into IPv6 by a dual-stack socket, is that one address', () => {
    expect(clientOf('10.0.0.1')).toBe('10.0.0.1');
    expect(clientOf('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(clientOf('::FFFF:10.0.0.1')).toBe('10.0.0.1');
    expect(clientOf('::ffff:a00:1')).toBe('10.0.0.1');
  });

  it('a port or brackets a proxy added are left off', () => {
    expect(clientOf('10.1.1.1:1234')).toBe('10.1.1.1');
    expect(clientOf('[::ffff:10.1.1.1]')).toBe('10.1.1.1');
    expect(clientOf('[2001:db8:1:2::5]')).toBe('2001:db8:1:2::/64');
    expect(clientOf('[2001:db8:1:2::5]:443')).toBe('2001:db8:1:2::/64');
  });

  it('anything else is counted as it is', () => {
    expect(clientOf('unknown')).toBe('unknown');
    expect(clientOf('2001::5::1')).toBe('2001::5::1');
  });
});
