// `--api-key KEY` / OVIS_API_KEY: the /v1 routes need `Authorization: Bearer KEY`. The key is
// compared in constant time (both sides hashed to 32 bytes first, so neither the content nor the
// length of the key leaks through the time a refusal takes).
import { createHash, timingSafeEqual } from 'node:crypto';
import { HttpError } from './http-error.js';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export function bearerChecker(key: string): (authorization: string | undefined) => void {
  const want = digest(key);
  return (authorization) => {
    const m = /^Bearer\s+(.+)$/i.exec(authorization?.trim() ?? '');
    if (!m) throw new HttpError(401, 'this server needs an API key: send the header "Authorization: Bearer KEY"', 'authentication_error', null, 'invalid_api_key');
    if (!timingSafeEqual(digest(m[1].trim()), want)) throw new HttpError(401, 'the API key given is not this server\'s (--api-key / OVIS_API_KEY)', 'authentication_error', null, 'invalid_api_key');
  };
}

/** Whether a host to bind to only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
