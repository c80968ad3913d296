import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cosine } from '@lookalike/core';
import { decodeImage, preprocessBatch } from '@lookalike/imaging';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxImageEncoder } from './image-encoder.js';
import { ModelRegistry } from './registry.js';
import { OnnxTextEncoder } from './text-encoder.js';

// The committed tiny towers and their PyTorch reference embeddings (models/training/fixtures.py). The TypeScript
// path under test is the production one: our decode, our PIL-exact resize and crop, onnxruntime-node.
const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));
const FIXTURES = path.join(MODELS, 'fixtures');

interface Parity {
  input: { size: number };
  textModel: string;
  images: { file: string; width: number; height: number; embeddings: Record<string, number[]> }[];
  texts: { text: string; ids: number[]; embedding: number[] }[];
}

const parity = JSON.parse(await readFile(path.join(FIXTURES, 'parity.json'), 'utf8')) as Parity;
const imageModels = Object.keys(parity.images[0]?.embeddings ?? {});

describe('PyTorch parity of the committed tiny towers', () => {
  let registry: ModelRegistry;
  const encoders = new Map<string, OnnxImageEncoder>();
  let text: OnnxTextEncoder;
  beforeAll(async () => {
    registry = await ModelRegistry.open(MODELS);
    for (const id of imageModels) encoders.set(id, await OnnxImageEncoder.load(registry, id));
    text = await OnnxTextEncoder.load(registry, parity.textModel);
  });
  afterAll(async () => {
    await Promise.all([...encoders.values()].map((e) => e.close()));
    await text.close();
  });

  it('has fixtures for both image towers and several images', () => {
    expect(imageModels.sort()).toEqual(['defect-cnn-clean', 'defect-cnn-fare4']);
    expect(parity.images.length).toBeGreaterThanOrEqual(6);
  });

  for (const id of ['defect-cnn-clean', 'defect-cnn-fare4']) {
    it(`reproduces ${id}'s embeddings from the image files with cosine ≥ 0.9999`, async () => {
      const encoder = encoders.get(id)!;
      const images = await Promise.all(
        parity.images.map(async (f) => decodeImage(await readFile(path.join(FIXTURES, f.file)))),
      );
      images.forEach((img, i) =>
        expect([img.width, img.height]).toEqual([parity.images[i]!.width, parity.images[i]!.height]),
      );
      const batch = preprocessBatch(images, encoder.info.preprocess);
      const embeddings = await encoder.embed(batch);
      const cosines = embeddings.map((e, i) => cosine(e, Float32Array.from(parity.images[i]!.embeddings[id]!)));
      expect(Math.min(...cosines)).toBeGreaterThanOrEqual(0.9999);
    });
  }

  it('tokenises like the Python tokenizer and reproduces the text embeddings with cosine ≥ 0.9999', async () => {
    for (const t of parity.texts) expect(text.tokenize(t.text)).toEqual(t.ids);
    const embeddings = await text.embed(parity.texts.map((t) => t.text));
    const cosines = embeddings.map((e, i) => cosine(e, Float32Array.from(parity.texts[i]!.embedding)));
    expect(Math.min(...cosines)).toBeGreaterThanOrEqual(0.9999);
  });
});
