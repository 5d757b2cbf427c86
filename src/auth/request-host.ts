import type { Request } from 'express';

/** How the host a request was addressed to is read: see requestHost. */
export type HostReader = (req: Request) => string | undefined;

/**
 * The host a token is bound to when minted and checked against when used: the Host header's
 * name (without port). X-Forwarded-Host counts only with `trustForwardedHost` (TRUST_FORWARDED_HOST
 * =on, which needs TRUST_PROXY): a proxy that passes on a client's X-Forwarded-Host would
 * otherwise let any caller choose the host, and the binding would mean nothing.
 */
export function requestHost(trustForwardedHost: boolean): HostReader {
  // Express's req.hostname: X-Forwarded-Host when the connection comes from a trusted proxy
  if (trustForwardedHost) return (req) => req.hostname;
  return (req) => hostnameOf(req.headers.host);
}

/** "example.com:3000" -> "example.com", "[::1]:3000" -> "[::1]": Express's rule for req.hostname. */
function hostnameOf(host: string | undefined): string | undefined {
  if (!host) return undefined;
  const portFrom = host.indexOf(':', host.startsWith('[') ? host.indexOf(']') + 1 : 0);
  return portFrom === -1 ? host : host.slice(0, portFrom);
}
