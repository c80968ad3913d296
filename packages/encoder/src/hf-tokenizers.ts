import * as hf from '@huggingface/tokenizers';

/** The part of `@huggingface/tokenizers`' `Tokenizer` that Lookalike uses. */
export interface HfTokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): { ids: number[] };
}

/**
 * `@huggingface/tokenizers` 0.2 ships ESM type declarations with extension-less relative imports, which
 * `moduleResolution: NodeNext` cannot follow, so its `Tokenizer` arrives untyped; this gives it the shape we use.
 */
export const Tokenizer = (hf as unknown as { Tokenizer: new (tokenizerJson: object, config: object) => HfTokenizer })
  .Tokenizer;
