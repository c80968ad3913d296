/**
 * Fetches an image over http(s) for ingest without letting a URL reach inside the network: every address a host
 * resolves to is checked in the socket's own DNS lookup (so a second, rebinding lookup cannot swap it), private,
 * loopback, link-local and other special ranges are refused unless allowlisted, redirects are re-checked, and the
 * body is capped in bytes and time.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { AppError, ValidationError } from '@lookalike/core';

export interface FetchLimits {
  maxBytes: number;
  timeoutMs: number;
  /** CIDR ranges or hostnames that may be fetched even though they are private (e.g. an internal image server). */
  allowlist?: readonly string[];
  maxRedirects?: number;
}

/** Ranges a public URL may resolve to; anything else (private, loopback, link-local, multicast, …) is refused. */
const PUBLIC_RANGES = new Set(['unicast']);

function allowedByList(address: string, host: string, allowlist: readonly string[]): boolean {
  const ip = ipaddr.process(address);
  for (const entry of allowlist) {
    if (entry.toLowerCase() === host.toLowerCase()) return true;
    if (entry.includes('/')) {
      try {
        const [range, bits] = ipaddr.parseCIDR(entry);
        if (ip.kind() === range.kind() && ip.match([range, bits] as never)) return true;
      } catch {
        // Not a CIDR; compared as a hostname above.
      }
    } else if (ipaddr.isValid(entry) && ipaddr.process(entry).toString() === ip.toString()) return true;
  }
  return false;
}

/** Why an address may not be fetched, or undefined when it may. */
export function refusedAddress(address: string, host: string, allowlist: readonly string[] = []): string | undefined {
  if (!ipaddr.isValid(address)) return `${address} is not an IP address`;
  if (allowedByList(address, host, allowlist)) return undefined;
  const range = ipaddr.process(address).range();
  return PUBLIC_RANGES.has(range) ? undefined : `${host} resolves to ${address}, a ${range} address`;
}

function guardedLookup(host: string, allowlist: readonly string[]): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
      if (error) return callback(error, '', 4);
      const refused = addresses.map((a) => refusedAddress(a.address, host, allowlist)).find(Boolean);
      if (refused) return callback(Object.assign(new Error(refused), { code: 'EREFUSEDADDRESS' }), '', 4);
      const first = addresses[0];
      if (!first) return callback(new Error(`${hostname} has no addresses`), '', 4);
      if ((options as { all?: boolean }).all)
        return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      return callback(null, first.address, first.family);
    });
  };
}

/** Downloads `url` within the limits; throws `ValidationError` for refused URLs and `AppError` for failures. */
export async function fetchImage(url: string, limits: FetchLimits, redirects = 0): Promise<Uint8Array> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ValidationError(`${url} is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new ValidationError(`only http and https URLs can be ingested; got ${parsed.protocol}`);
  if (parsed.username || parsed.password) throw new ValidationError('URLs with credentials are refused');
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  const allowlist = limits.allowlist ?? [];
  if (ipaddr.isValid(host)) {
    const refused = refusedAddress(host, host, allowlist);
    if (refused) throw new ValidationError(`${url} is refused: ${refused}; add it to URL_ALLOWLIST to allow it`);
  }
  const client = parsed.protocol === 'https:' ? https : http;
  return new Promise<Uint8Array>((resolve, reject) => {
    const req = client.get(
      parsed,
      { lookup: guardedLookup(host, allowlist), timeout: limits.timeoutMs, headers: { accept: 'image/*' } },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400 && res.headers.location) {
          res.resume();
          if (redirects >= (limits.maxRedirects ?? 3))
            return reject(new AppError('VALIDATION_FAILED', `${url} redirects too often`));
          const next = new URL(res.headers.location, parsed).toString();
          return void fetchImage(next, limits, redirects + 1).then(resolve, reject);
        }
        if (status !== 200) {
          res.resume();
          const code = status === 404 || status === 410 ? 'NOT_FOUND' : 'INTERNAL';
          return reject(new AppError(code, `${url} answered HTTP ${status}`, { details: { status } }));
        }
        const declared = Number(res.headers['content-length'] ?? 0);
        if (declared > limits.maxBytes) {
          res.destroy();
          return reject(
            new AppError('IMAGE_TOO_MANY_BYTES', `${url} is ${declared} bytes; the limit is ${limits.maxBytes}`),
          );
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > limits.maxBytes) {
            res.destroy();
            reject(new AppError('IMAGE_TOO_MANY_BYTES', `${url} sent more than ${limits.maxBytes} bytes`));
          } else chunks.push(chunk);
        });
        res.on('end', () => resolve(new Uint8Array(Buffer.concat(chunks))));
        res.on('error', reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(new AppError('INTERNAL', `${url} did not answer within ${limits.timeoutMs} ms`)),
    );
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EREFUSEDADDRESS')
        reject(new ValidationError(`${url} is refused: ${error.message}; add it to URL_ALLOWLIST to allow it`));
      else
        reject(
          error instanceof AppError
            ? error
            : new AppError('INTERNAL', `${url} could not be fetched: ${error.message}`, { cause: error }),
        );
    });
  });
}
