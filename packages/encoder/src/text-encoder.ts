import { readFile } from 'node:fs/promises';
import { ModelError, ValidationError, type TextEncoder } from '@lookalike/core';
import { MicroBatcher } from './batcher.js';
import { Tokenizer, type HfTokenizer } from './hf-tokenizers.js';
import type { TextModelManifest } from './manifest.js';
import type { ModelRegistry } from './registry.js';
import { DEFAULT_RUNTIME_OPTIONS, openSession, splitRows, type EncoderRuntimeOptions } from './runtime.js';
import type { ModelSession, TensorData } from '@lookalike/onnx-session';

/** Longest query text accepted, in characters; far beyond any context length, it bounds tokenizer work. */
export const MAX_TEXT_LENGTH = 2000;

/**
 * A CLIP text tower served by onnxruntime-node, with its Hugging Face `tokenizer.json`. Token ids follow open_clip's
 * rule: `[SOT] tokens… [EOT]`, truncated so EOT always fits, padded to the context length.
 */
export class OnnxTextEncoder implements TextEncoder {
  readonly info: { id: string; dim: number; contextLength: number };
  private readonly batcher: MicroBatcher<string, Float32Array>;

  private constructor(
    private readonly session: ModelSession,
    private readonly tokenizer: HfTokenizer,
    private readonly manifest: TextModelManifest,
    options: Required<EncoderRuntimeOptions>,
  ) {
    this.info = { id: manifest.id, dim: manifest.output.dim, contextLength: manifest.text.contextLength };
    this.batcher = new MicroBatcher((texts) => this.run(texts), {
      maxBatch: options.maxBatch,
      maxWaitMs: options.maxWaitMs,
    });
  }

  /** Verifies checksums, loads the tokenizer and opens the session. */
  static async load(
    registry: ModelRegistry,
    id: string,
    options: EncoderRuntimeOptions = {},
  ): Promise<OnnxTextEncoder> {
    const manifest = registry.text(id);
    await registry.verify(id);
    let tokenizer: HfTokenizer;
    try {
      const json = JSON.parse(await readFile(registry.file(id, manifest.files.tokenizer), 'utf8')) as {
        model?: { unk_token?: string };
      };
      const config = manifest.files.tokenizerConfig
        ? (JSON.parse(await readFile(registry.file(id, manifest.files.tokenizerConfig), 'utf8')) as object)
        : {};
      // @huggingface/tokenizers reads a WordLevel model through its generic vocabulary model, which takes the
      // unknown token from the config rather than from the model block; without it unknown words get no id.
      tokenizer = new Tokenizer(json, { unk_token: json.model?.unk_token, ...config });
    } catch (error) {
      throw new ModelError(`Model ${id}: its tokenizer could not be loaded: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const resolved = { ...DEFAULT_RUNTIME_OPTIONS, ...options };
    const session = await openSession(
      registry.file(id, manifest.files.model),
      { input: manifest.text.name, output: manifest.output.name },
      resolved,
    );
    return new OnnxTextEncoder(session, tokenizer, manifest, resolved);
  }

  /** Token ids of `text`, exactly as the model sees them (length = context length). */
  tokenize(text: string): number[] {
    if (text.length > MAX_TEXT_LENGTH) {
      throw new ValidationError(`text is ${text.length} characters long; the limit is ${MAX_TEXT_LENGTH}`);
    }
    const { contextLength, sotId, eotId, padId } = this.manifest.text;
    const body = this.tokenizer.encode(text, { add_special_tokens: false }).ids.slice(0, contextLength - 2);
    const ids = [sotId, ...body, eotId];
    while (ids.length < contextLength) ids.push(padId);
    return ids;
  }

  embed(texts: readonly string[]): Promise<Float32Array[]> {
    try {
      for (const t of texts) this.tokenize(t); // Validate up front so one bad text fails only its own request.
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return this.batcher.submit(texts);
  }

  async close(): Promise<void> {
    await this.batcher.close();
    await this.session.release();
  }

  private async run(texts: string[]): Promise<Float32Array[]> {
    const { contextLength, name, dtype } = this.manifest.text;
    const n = texts.length;
    const ids = texts.flatMap((t) => this.tokenize(t));
    const input: TensorData =
      dtype === 'int64'
        ? { type: 'int64', data: BigInt64Array.from(ids, (v) => BigInt(v)), dims: [n, contextLength] }
        : { type: 'int32', data: Int32Array.from(ids), dims: [n, contextLength] };
    const outputName = this.manifest.output.name;
    const outputs = await this.session.run({ [name]: input }, [outputName], { transfer: true });
    const output = outputs[outputName]!;
    return splitRows(output.data as Float32Array, n, this.manifest.output.dim, !this.manifest.output.normalized);
  }
}
