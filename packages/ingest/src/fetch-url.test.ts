import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ValidationError } from '@lookalike/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchImage, refusedAddress } from './fetch-url.js';

let server: Server;
let base: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/img') return res.end(Buffer.alloc(1000, 7));
    if (req.url === '/big') return res.end(Buffer.alloc(5000, 1));
    if (req.url === '/chunked') {
      res.write(Buffer.alloc(3000));
      res.write(Buffer.alloc(3000));
      return res.end();
    }
    if (req.url === '/redirect') {
      res.writeHead(302, { location: '/img' });
      return res.end();
    }
    if (req.url === '/slow') return void setTimeout(() => res.end('late'), 2000);
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const allow = { maxBytes: 4096, timeoutMs: 1000, allowlist: ['127.0.0.1/32'] };

describe(fetchImage.name, () => {
  it('refuses loopback, private, link-local and metadata addresses unless allowlisted', async () => {
    for (const url of [
      `${base}/img`,
      'http://localhost:1/img',
      'http://10.0.0.1/x',
      'http://169.254.169.254/latest/meta-data',
      'http://[::1]/x',
      'http://192.168.1.1/x',
    ]) {
      const error: unknown = await fetchImage(url, { maxBytes: 4096, timeoutMs: 1000 }).catch((e: unknown) => e);
      expect(error, url).toBeInstanceOf(ValidationError);
      expect((error as Error).message).toMatch(/refused/);
    }
  });

  it('refuses other schemes and credentials', async () => {
    await expect(fetchImage('file:///etc/passwd', allow)).rejects.toThrow(/only http and https/);
    await expect(fetchImage('http://user:pw@127.0.0.1/x', allow)).rejects.toThrow(/credentials/);
    await expect(fetchImage('not a url', allow)).rejects.toThrow(/not a URL/);
  });

  it('fetches an allowlisted address, follows redirects, and enforces byte and time limits', async () => {
    expect((await fetchImage(`${base}/img`, allow)).length).toBe(1000);
    expect((await fetchImage(`${base}/redirect`, allow)).length).toBe(1000);
    await expect(fetchImage(`${base}/big`, allow)).rejects.toMatchObject({ code: 'IMAGE_TOO_MANY_BYTES' });
    await expect(fetchImage(`${base}/chunked`, allow)).rejects.toMatchObject({ code: 'IMAGE_TOO_MANY_BYTES' });
    await expect(fetchImage(`${base}/slow`, { ...allow, timeoutMs: 200 })).rejects.toThrow(/did not answer/);
    await expect(fetchImage(`${base}/missing`, allow)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe(refusedAddress.name, () => {
  it('allows public unicast and refuses special ranges', () => {
    expect(refusedAddress('93.184.216.34', 'example.com')).toBeUndefined();
    expect(refusedAddress('2606:2800:220:1::1', 'example.com')).toBeUndefined();
    expect(refusedAddress('127.0.0.1', 'x')).toMatch(/loopback/);
    expect(refusedAddress('::ffff:10.1.2.3', 'x')).toMatch(/private/);
    expect(refusedAddress('fe80::1', 'x')).toMatch(/linkLocal/);
    expect(refusedAddress('100.64.0.1', 'x')).toMatch(/carrierGradeNat/);
    expect(refusedAddress('10.1.2.3', 'images.internal', ['images.internal'])).toBeUndefined();
  });
});
