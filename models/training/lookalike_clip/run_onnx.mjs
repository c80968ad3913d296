// Runs one ONNX model on a raw little-endian tensor with onnxruntime-node and writes the output as raw float32.
// Used by onnx_export.py to check exported graphs against PyTorch (no onnxruntime for Python here).
// Usage: node run_onnx.mjs '{"model":…,"input":"pixel_values","output":"embedding","dtype":"float32","shape":[…],"src":…,"dst":…}'
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const spec = JSON.parse(process.argv[2]);
// Resolve onnxruntime-node from the repository's node_modules (this file lives in models/training/lookalike_clip).
const require = createRequire(join(dirname(fileURLToPath(import.meta.url)), '../../../package.json'));
const ort = require('onnxruntime-node');

const raw = readFileSync(spec.src);
const data =
  spec.dtype === 'int64'
    ? new BigInt64Array(raw.buffer, raw.byteOffset, raw.byteLength / 8)
    : new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
const session = await ort.InferenceSession.create(spec.model, { intraOpNumThreads: 1 });
const out = await session.run({ [spec.input]: new ort.Tensor(spec.dtype, data, spec.shape) });
const result = out[spec.output].data;
writeFileSync(spec.dst, Buffer.from(result.buffer, result.byteOffset, result.byteLength));
