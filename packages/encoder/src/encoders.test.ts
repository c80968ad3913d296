import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelError, ValidationError } from '@lookalike/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxImageEncoder } from './image-encoder.js';
import { ModelRegistry } from './registry.js';
import { OnnxTextEncoder } from './text-encoder.js';

// Fixture models with closed-form weights (see test/fixtures/make_fixtures.py), so every expected number here is
// computed independently of onnxruntime.
const FIXTURES = fileURLToPath(new URL('../test/fixtures/', import.meta.url));
const MEAN = [0.48145466, 0.4578275, 0.40821073];
const STD = [0.26862954, 0.26130258, 0.27577711];
const VOCAB = ['[PAD]', '[SOT]', '[EOT]', '[UNK]', 'a', 'red', 'gear', 'with', 'crack', 'no', 'defects'];

function unit(v: number[]): number[] {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

function expectedImageEmbedding(pixels: Float32Array): number[] {
  const out = new Array<number>(8).fill(0);
  for (let i = 0; i < 48; i++) {
    const c = Math.floor(i / 16);
    const x = (pixels[i]! - MEAN[c]!) / STD[c]!;
    for (let j = 0; j < 8; j++) out[j]! += x * (Math.sin(0.7 * i + 0.3 * j) / 10);
  }
  return unit(out);
}

function expectedTextEmbedding(ids: number[]): number[] {
  const out = new Array<number>(8).fill(0);
  for (const v of ids) for (let j = 0; j < 8; j++) out[j]! += Math.cos(0.5 * v + 1.1 * j) / 10;
  return unit(out);
}

function randomPixels(n: number, seed: number): Float32Array {
  const data = new Float32Array(n * 48);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    data[i] = s / 2147483648;
  }
  return data;
}

describe(ModelRegistry.name, () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lookalike-registry-'));
    await cp(FIXTURES, dir, { recursive: true });
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('lists valid models and explains what is wrong with the others', async () => {
    await cp(path.join(dir, 'linear-image'), path.join(dir, 'broken'), { recursive: true });
    await writeFile(path.join(dir, 'broken', 'manifest.json'), JSON.stringify({ schemaVersion: 1, id: 'broken' }));
    const registry = await ModelRegistry.open(dir);
    expect(
      registry
        .list()
        .map((m) => m.id)
        .sort(),
    ).toEqual(['bag-text', 'linear-image']);
    expect(registry.problems.get('broken')).toMatch(/role/);
    expect(() => registry.image('broken')).toThrow(/invalid manifest/);
    expect(() => registry.image('nope')).toThrow(/No model with id nope .*available: bag-text, linear-image/);
    expect(() => registry.image('bag-text')).toThrow(/text tower, not an image tower/);
    expect(() => registry.text('linear-image')).toThrow(/image tower, not a text tower/);
  });

  it('refuses a model whose file no longer matches its checksum', async () => {
    const tampered = path.join(dir, 'tampered');
    await cp(path.join(dir, 'linear-image'), tampered, { recursive: true });
    const manifest = JSON.parse(await readFile(path.join(tampered, 'manifest.json'), 'utf8'));
    await writeFile(path.join(tampered, 'manifest.json'), JSON.stringify({ ...manifest, id: 'tampered' }));
    await writeFile(path.join(tampered, 'model.onnx'), Buffer.from('not the model'));
    const registry = await ModelRegistry.open(dir);
    await expect(registry.verify('tampered')).rejects.toThrow(ModelError);
    await expect(registry.verify('tampered')).rejects.toThrow(/model\.onnx has sha256 .* but the manifest says/);
    await expect(registry.verify('linear-image')).resolves.toBeUndefined();
  });

  it('fails clearly when the models folder does not exist', async () => {
    await expect(ModelRegistry.open(path.join(dir, 'missing'))).rejects.toThrow(/cannot be read; set MODELS_DIR/);
  });
});

describe(OnnxImageEncoder.name, () => {
  let encoder: OnnxImageEncoder;
  beforeAll(async () => {
    encoder = await OnnxImageEncoder.load(await ModelRegistry.open(FIXTURES), 'linear-image', { maxWaitMs: 1 });
  });
  afterAll(() => encoder.close());

  it('normalises pixels with the manifest mean/std and returns unit vectors matching the closed form', async () => {
    const pixels = randomPixels(3, 7);
    const out = await encoder.embed({ data: pixels, n: 3, height: 4, width: 4 });
    expect(out).toHaveLength(3);
    for (let i = 0; i < 3; i++) {
      const expected = expectedImageEmbedding(pixels.subarray(i * 48, (i + 1) * 48));
      out[i]!.forEach((v, j) => expect(v).toBeCloseTo(expected[j]!, 5));
    }
    expect(encoder.info).toMatchObject({ id: 'linear-image', role: 'clean', dim: 8 });
    expect(encoder.info.preprocessHash).toMatch(/^[0-9a-f]{8,}$/);
  });

  it('gives each concurrent caller its own embeddings', async () => {
    const batches = [randomPixels(1, 1), randomPixels(2, 2), randomPixels(5, 3)];
    const outs = await Promise.all(
      batches.map((data) => encoder.embed({ data, n: data.length / 48, height: 4, width: 4 })),
    );
    outs.forEach((out, b) => {
      out.forEach((v, i) => {
        const expected = expectedImageEmbedding(batches[b]!.subarray(i * 48, (i + 1) * 48));
        v.forEach((x, j) => expect(x).toBeCloseTo(expected[j]!, 5));
      });
    });
  });

  it('rejects inputs of the wrong size with a validation error', async () => {
    await expect(encoder.embed({ data: new Float32Array(3 * 8 * 8), n: 1, height: 8, width: 8 })).rejects.toThrow(
      ValidationError,
    );
    await expect(encoder.embed({ data: new Float32Array(47), n: 1, height: 4, width: 4 })).rejects.toThrow(
      /holds 47 values/,
    );
  });
});

describe(OnnxTextEncoder.name, () => {
  let encoder: OnnxTextEncoder;
  beforeAll(async () => {
    encoder = await OnnxTextEncoder.load(await ModelRegistry.open(FIXTURES), 'bag-text', { maxWaitMs: 1 });
  });
  afterAll(() => encoder.close());

  it('tokenises like open_clip: SOT, lower-cased words, EOT, padding; unknown words map to UNK', () => {
    const id = (w: string) => VOCAB.indexOf(w);
    expect(encoder.tokenize('A red gear with a Crack')).toEqual([
      1,
      id('a'),
      id('red'),
      id('gear'),
      id('with'),
      id('a'),
      id('crack'),
      2,
    ]);
    expect(encoder.tokenize('red sprocket')).toEqual([1, id('red'), 3, 2, 0, 0, 0, 0]);
  });

  it('truncates long texts so that EOT always fits', () => {
    const ids = encoder.tokenize('a red gear with a crack with a crack with no defects');
    expect(ids).toHaveLength(8);
    expect(ids[0]).toBe(1);
    expect(ids[7]).toBe(2);
  });

  it('embeds texts to the closed-form unit vectors of their token ids', async () => {
    const texts = ['a red gear', 'no defects', ''];
    const out = await encoder.embed(texts);
    texts.forEach((t, i) => {
      const expected = expectedTextEmbedding(encoder.tokenize(t));
      out[i]!.forEach((v, j) => expect(v).toBeCloseTo(expected[j]!, 5));
    });
  });

  it('refuses absurdly long texts before they reach the tokenizer', async () => {
    await expect(encoder.embed(['x'.repeat(5000)])).rejects.toThrow(/limit is 2000/);
  });
});
