"""Rewrite ``models/README.md`` (the model card) from the evaluation metrics, manifests and timings.

    python3 write_card.py --metrics work/metrics.json --timing work/timing.json --models-dir ..
"""

from __future__ import annotations

import argparse
import json
import os

from card_sections import BEFORE, FACET_LABELS, TRIED, attack_check_section, minutes, pct, quality_section

CLEAN, ROBUST, TEXT = "defect-cnn-clean", "defect-cnn-fare4", "defect-cnn-text"


def facet_row(name: str, vals: dict) -> str:
    return f"| {name} | " + " | ".join(pct(vals[k]) for k, _ in FACET_LABELS) + " |"


def aim(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def tuning_text(rt: dict) -> str:
    """What the text recipe's tuning run chose, on which seed (never the held-out one)."""
    t = rt.get("tuning")
    return f" The robust tower's share of the loss was chosen on a tuning catalog of seed {t['dataSeed']} ({t['chose']})." if t else ""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--metrics", required=True)
    p.add_argument("--timing", required=True)
    p.add_argument("--models-dir", required=True)
    args = p.parse_args()

    with open(args.metrics, encoding="utf-8") as f:
        m = json.load(f)
    with open(args.timing, encoding="utf-8") as f:
        timing = json.load(f)
    manifests = {}
    for mid in (CLEAN, ROBUST, TEXT):
        with open(os.path.join(args.models_dir, mid, "manifest.json"), encoding="utf-8") as f:
            manifests[mid] = json.load(f)
    sizes = {mid: os.path.getsize(os.path.join(args.models_dir, mid, "model.onnx")) for mid in manifests}

    c, r = m["towers"]["clean"], m["towers"]["robust"]
    ri, rt = m["recipes"]["clean"]["image"], m["recipes"]["clean"]["text"]
    rf = m["recipes"]["robust"]
    vis = manifests[CLEAN]["architecture"]
    txt = manifests[TEXT]["architecture"]
    tm = manifests[TEXT]["text"]
    inp = manifests[CLEAN]["input"]
    atk = m["attack"]
    eps_keys = list(c["attacked"].keys())

    facet_head = "| precision@10 (%) | " + " | ".join(label for _, label in FACET_LABELS) + " |\n|---" * 1 + "|---" * len(FACET_LABELS) + "|"
    before_rows = "\n".join(f"| {k} (before) | " + " | ".join(f"{v:.1f}" for v in vals) + " |" for k, vals in BEFORE.items())
    facet_table = "\n".join(
        [facet_head, facet_row("chance", m["chance"]), facet_row(f"`{ROBUST}`", r["facetPrecisionAt10"]), facet_row(f"`{CLEAN}`", c["facetPrecisionAt10"]), before_rows]
    )
    attacked_rows = []
    for e in eps_keys:
        attacked_rows.append(facet_row(f"`{ROBUST}`, ε = {e}", r["attacked"][e]["facetPrecisionAt10"]))
        attacked_rows.append(facet_row(f"`{CLEAN}`, ε = {e}", c["attacked"][e]["facetPrecisionAt10"]))
    attacked_table = "\n".join(
        [facet_head, facet_row(f"`{ROBUST}`, ε = 0 (same queries)", r["facetPrecisionAt10AttackQueries"]),
         facet_row(f"`{CLEAN}`, ε = 0 (same queries)", c["facetPrecisionAt10AttackQueries"]), *attacked_rows]
    )
    rows = [
        ("Zero-shot defect accuracy (8 classes, prompts averaged over parts)", lambda t: t["zeroShotDefectAccuracy"]),
        ("Zero-shot part accuracy (8 classes)", lambda t: t["zeroShotPartAccuracy"]),
        ('"a <part> with a <defect>" → images: part+defect precision@10', lambda t: t["promptPrecisionAt10"]["partDefect"]),
        ("  … defective prompts only", lambda t: t["promptPrecisionAt10"]["partDefectDefectivePrompts"]),
        ('  … "with no defects" prompts only', lambda t: t["promptPrecisionAt10"]["partDefectNoDefectPrompts"]),
        ("Text→image recall@10 (own image among 10 nearest)", lambda t: t["textToImageRecallAt10"]),
        ("Twin accuracy, image side (own caption beats twin's)", lambda t: t["twinAccuracyImage"]),
        ("Twin accuracy, text side (own image beats twin image)", lambda t: t["twinAccuracyText"]),
    ]
    text_table = "\n".join(f"| {label} | {pct(fn(c))} | {pct(fn(r))} |" for label, fn in rows)
    models_table = "\n".join(
        f"| `{mid}` | {manifests[mid]['role']} | `{mid}/model.onnx` | {sizes[mid] / 1e6:.1f} MB | "
        f"`{manifests[mid]['files']['model']['sha256'][:12]}…` |"
        for mid in (CLEAN, ROBUST, TEXT)
    )
    cf, rfp = c["facetPrecisionAt10"], r["facetPrecisionAt10"]
    a4 = "4/255"
    ra4 = r["attacked"].get(a4, {}).get("facetPrecisionAt10", {}).get("partDefect", 0.0)
    ca4 = c["attacked"].get(a4, {}).get("facetPrecisionAt10", {}).get("partDefect", 0.0)
    aims = [
        f"clean tower part+defect precision@10 ≥ 50 %: {pct(cf['partDefect'])} — {aim(cf['partDefect'] >= 0.5)}",
        f"clean tower same-defect precision@10 over defective queries ≥ 60 %: {pct(cf['defectDefectiveQueries'])} — {aim(cf['defectDefectiveQueries'] >= 0.6)}",
        f"clean tower colour precision ≤ part precision: {pct(cf['color'])} vs {pct(cf['part'])} — {aim(cf['color'] <= cf['part'])}",
        f"robust tower part+defect precision@10 ≥ 40 %: {pct(rfp['partDefect'])} — {aim(rfp['partDefect'] >= 0.4)}",
        f"robust tower part+defect precision@10 ≥ 25 % at ε = 4/255 (here PGD-{atk['steps']} in PyTorch; the audit's APGD-100 through TypeScript is in `npm run bench:quality`): {pct(ra4)} — {aim(ra4 >= 0.25)}",
        f"clean tower's attacked part+defect precision@10 < 5 % at ε = 4/255: {pct(ca4)} — {aim(ca4 < 0.05)}",
        f"zero-shot defect accuracy ≥ 60 % (robust tower): {pct(r['zeroShotDefectAccuracy'])} — {aim(r['zeroShotDefectAccuracy'] >= 0.6)}; clean tower {pct(c['zeroShotDefectAccuracy'])}",
        f"\"a <part> with a <defect>\" part+defect precision@10 ≥ 50 % (robust tower): {pct(r['promptPrecisionAt10']['partDefect'])} — {aim(r['promptPrecisionAt10']['partDefect'] >= 0.5)}; clean tower {pct(c['promptPrecisionAt10']['partDefect'])}",
        f"twins: own caption beats the twin's ≥ 90 % (robust tower): {pct(r['twinAccuracyImage'])} — {aim(r['twinAccuracyImage'] >= 0.9)}; clean tower {pct(c['twinAccuracyImage'])}",
    ]
    aims_text = "\n".join(f"- {a}" for a in aims)
    widths = vis["widths"]

    card = f"""# Lookalike models — defect-seeing CNN towers (clean + FARE-robust) and a LiT text tower

*This file is generated by `models/training/write_card.py`; run `npm run models:train`
(`bash models/training/train_all.sh`) to regenerate the data, retrain, re-export, re-evaluate and rewrite it.*

No pretrained CLIP weights can be downloaded where Lookalike is built, so it trains its own small towers on its
synthetic product/defect catalog (`packages/synth`) and makes the image tower adversarially robust with FARE
(Schlarmann et al., ICML 2024). Real deployments swap in open_clip ViT-B/32 towers through the same export path
(see [Real checkpoints](#real-checkpoints)). These small models know only the synthetic catalog's world (8 parts,
10 colours, 8 materials, 8 defect kinds, 9 positions) and are not general-purpose image encoders. Their job is the
product's: for a photo of a defective part, find the same kind of part with the same kind of defect.

## Models

| id | role | file | size | sha256 |
|---|---|---|---|---|
{models_table}

Each folder holds `model.onnx` and `manifest.json` (`schemaVersion` 1: id, role, files with sha256, input
contract, output, architecture, training recipe); the text tower's folder also holds `tokenizer.json` and
`tokenizer_config.json`. `{CLEAN}` and `{ROBUST}` share `{TEXT}`: the text tower was trained last, against both
locked image towers (the robust tower's share of its loss: {rt.get('robustWeight', 0):g}; the product searches the robust tower by default).

### I/O contract

- Image towers: input `pixel_values` float32 `[N, 3, {inp['size']}, {inp['size']}]` (dynamic batch), **already
  normalised** with the manifest's `mean` `{inp['mean']}` and `std` `{inp['std']}` (OpenAI CLIP statistics);
  output `embedding` float32 `[N, {manifests[CLEAN]['output']['dim']}]`, L2-normalised inside the graph.
  Preprocessing: decode → RGB → resize the shortest side to {inp['size']} px (bicubic) → centre crop → scale to
  [0, 1] → normalise. Attacks in pixel space differentiate through the normalisation (a per-channel scale).
- Text tower: input `input_ids` int64 `[N, {tm['contextLength']}]` → `embedding` float32 `[N, {manifests[TEXT]['output']['dim']}]`, L2-normalised.
- ONNX opset 17; each export is run with onnxruntime-node and matches PyTorch (cosine ≥ 0.99999).

### Tokenizer

Word-level Hugging Face `tokenizer.json` (`WordLevel` model, `Lowercase` normaliser, `Whitespace` pre-tokenizer
— words and punctuation runs — and a `TemplateProcessing` post-processor adding `[SOT]`/`[EOT]`), vocabulary of
{txt['vocab_size']} tokens (every word of the catalog's captions and vocabulary plus common punctuation).
Special ids: `[PAD]` = {tm['padId']}, `[UNK]` = {tm['unkId']}, `[SOT]` = {tm['sotId']}, `[EOT]` = {tm['eotId']}.
Context length {tm['contextLength']}: a sequence is `[SOT] words[:{tm['contextLength'] - 2}] [EOT]` followed by `[PAD]` up to
{tm['contextLength']} ids. The text tower pools the **first position holding the EOT id**. `@huggingface/tokenizers`
(npm) takes `unk_token` from the second constructor argument: pass `tokenizer_config.json`, otherwise unknown
words get no id. It also ignores the JSON's padding, so the caller frames and pads as above.

## Architecture

- Image towers: a CNN at {vis['image_size']} px — a stem of two 3×3 convs, the first of stride 2 ({vis['stem_width']} channels), then
  {len(widths)} stages of widths {', '.join(str(w) for w in widths)}, each a stride-2 3×3 conv{f" and {vis['blocks']} residual block(s) of two 3×3 convs" if vis['blocks'] else " (no residual blocks)"}
  (a {vis['image_size'] // 2 ** (len(widths) + 1)}×{vis['image_size'] // 2 ** (len(widths) + 1)} final grid); BatchNorm after every conv (folded into the convs at export), {vis['act'].upper()} activations;
  generalised-mean pooling (GeM, p = {vis['gem_p']:g}) over locations, so a small defect counts for more than under average
  pooling; a linear projection to {vis['output_dim']} dims. The exported graph holds Conv, Sigmoid, Mul, Add, Clip, Pow,
  ReduceMean, MatMul and the normalisation, all differentiated by `packages/autodiff`.
- Text tower: open_clip's text half — `token_embedding`, `positional_embedding`, {txt['layers']} causal blocks (width
  {txt['width']}, {txt['heads']} heads), `ln_final`, EOT pooling, `text_projection` to {txt['output_dim']} dims; `logit_scale`.

## Training recipe

Data: `lookalike synth --twins` (catalog generator `{ri.get('generator')}`), seed {ri.get('dataSeed')} × {ri.get('items')} items
({ri.get('imagesPerEpoch')} images with the edited twins), 256 px PNG, decoded once and resized to {vis['image_size']} px as at inference.
Each twin differs from its item in exactly one attribute (a defect added, removed or moved, or the colour).

**1. Clean image tower** ({minutes(ri.get('wallSeconds', 0))}, {ri.get('device')}, stopped early: {ri.get('stoppedEarly')}):
{ri.get('epochs')} epochs, {ri.get('steps')} steps of {ri.get('batchItems')} items = {ri.get('batchImages')} images (each item with its twin),
AdamW lr {ri.get('lr')}, weight decay {ri.get('weightDecay')}, {ri.get('warmupSteps')} warm-up steps then cosine. Loss:
{ri.get('loss')} — the part+defect labels decide what is alike, and a twin whose defect was added or removed is an
image-side hard negative (CLIP-IN's edited twins); label heads (linear, on the embedding, weights
{ri.get('headWeights')}) keep the position and the colour readable for the text tower at a weight under the contrastive
term. Augmentation: {ri.get('augmentation')}. Last logged training accuracies: {ri.get('history', [{}])[-1] if ri.get('history') else '—'}.

**2. FARE robust image tower** ({minutes(rf.get('wallSeconds', 0))}, {rf.get('device')}, stopped early: {rf.get('stoppedEarly')}): the
clean tower fine-tuned with FARE's loss ‖φ_θ(x+δ) − φ_clean(x)‖² (φ_clean frozen){', divided by the batch mean ‖φ_clean(x)‖²' if rf.get('relativeFare') else ''},
plus {rf.get('cleanWeight')} × the same on the clean image (an anchor) and {rf.get('supconWeight')} × SupCon (same part+defect) on the
attacked embeddings. δ: ℓ∞ PGD, ε = {rf.get('epsilon')} (ramped from 0 over the first {100 * rf.get('epsWarmupFrac', 0):.0f} % of steps),
{rf.get('pgdSteps')} steps of {rf.get('pgdStepSize')} with momentum {rf.get('pgdMomentum')} on the sign of the gradient, uniform random start,
clamped to [0, 1] in pixel space. BatchNorm: {rf.get('batchNorm')}. {rf.get('epochs')} epochs over {rf.get('images')} images
({rf.get('steps')} steps of {rf.get('batch')}), AdamW lr {rf.get('lr')}, weight decay {rf.get('weightDecay')}, {rf.get('warmupSteps')} warm-up steps,
cosine.

**3. Text tower** ({minutes(rt.get('wallSeconds', 0))}, LiT): {rt.get('method')}; {rt.get('epochs')} epochs, {rt.get('steps')} steps of
{rt.get('batchCaptions')} captions, AdamW lr {rt.get('lr')}. Loss: {rt.get('loss')}; captions: {rt.get('captionDropout')}.{tuning_text(rt)}

Wall time on this 2-core CPU (shared with other work): data generation {minutes(timing['dataSeconds'])}, training
{minutes(timing['trainSeconds'])}, export + evaluation + fixtures {minutes(timing['exportEvalSeconds'])}; whole command
{minutes(timing['totalSeconds'])}.{(chr(10) + chr(10) + timing['note']) if timing.get('note') else ''}

### What was tried

{TRIED}
## Evaluation

Held-out catalog of a seed never used in training or tuning ({m['data']['seed']}), {m['data']['items']} items; gallery = all
{m['data']['items']} originals; every item is a query by its embedding, top 10, the query itself left out; precision@10 =
share of the 10 hits with the query's label. Chance = the share of the other gallery items with it.

{facet_table}

Under attack (PyTorch, ℓ∞ PGD-{atk['steps']}, untargeted loss 1 − cos(φ(x+δ), φ(x)), random start, step 2.5ε/{atk['steps']}, best
iterate; the first {atk['queries']} queries; gallery clean):

{attacked_table}

Text (the text tower against each image tower's gallery):

| metric (%) | `{CLEAN}` | `{ROBUST}` |
|---|---|---|
{text_table}

### Aims (issue #14)

{aims_text}

Caveats: PGD-{atk['steps']} with one restart is weaker than APGD-100 (`npm run bench:quality` runs the audit's attack through
the TypeScript path on a catalog of yet another seed); the catalog is synthetic; {atk['queries']} attacked queries give
roughly ±{100 * (0.25 / max(1, atk['queries'])) ** 0.5:.0f} points of sampling error.

## Parity fixtures

`models/fixtures/parity.json` with `models/fixtures/images/*.png`: held-out images (native 256 px and already at
{inp['size']} px) with both image towers' embeddings computed with PIL + torchvision preprocessing, and captions (plus
edge cases: capitals and punctuation, unknown words, empty text) with their token ids and text embeddings. The
TypeScript encoder must reproduce them with cosine ≥ 0.9999.

## Real checkpoints

`models/training/export_openclip.py` loads a local open_clip state dict (full model, `{{"state_dict": …}}` checkpoint
or bare image tower; `module.` and `visual.` prefixes handled) into the same tower classes with `strict=True`, infers
the shape from the weights, exports ONNX with the same contract and writes the manifests:

```sh
cd models/training
# clean baseline: open_clip ViT-B-32 laion2b_s34b_b79k; robust: hf-hub:chs20/FARE4-ViT-B-32-laion2B-s34B-b79K
python3 export_openclip.py --checkpoint vitb32-laion2b.pt --role clean --id vit-b-32-laion2b \\
    --text-id vit-b-32-laion2b-text --tokenizer clip-tokenizer.json --models-dir ..
python3 export_openclip.py --checkpoint fare4-vitb32.pt --role robust --id vit-b-32-fare4 --models-dir ..
```

(get the weights on a connected machine with open_clip and `torch.save(model.state_dict(), path)`; the tokenizer is
the `tokenizer.json` of a CLIP ViT-B/32 Hugging Face repository; LAION towers use GELU, OpenAI's `--act quick_gelu`.)
It is exercised here with random weights of the exact ViT-B/32 shape: `python3 make_random_vitb32.py --out
work/vitb32-random.pt --with-text` writes the open_clip key layout (spelled out independently of the model code),
then `export_openclip.py` loads it strictly and exports both towers.

{quality_section(args.models_dir)}{attack_check_section(args.models_dir)}
## Files

`models/training/`: `lookalike_clip/` (models, tokenizer, data, losses, ONNX export, `onnx_torch.py` which runs an
exported CNN graph in PyTorch), `train_image.py`, `train_text.py`, `train_fare.py`, `train_clip.py` (the previous
caption-contrastive ViT recipe, kept to reproduce the "before" row), `export.py`, `evaluate.py`, `fixtures.py`, `write_card.py` (with `card_sections.py`), `export_openclip.py`,
`make_random_vitb32.py`, `compare_pgd.py`, `train_quality.py` (the quality models), `test_lookalike_clip.py` (unit checks:
`python3 -m unittest` in `models/training`), `train_all.sh`. Scripts take `--device auto|cpu|cuda` and run unchanged on a current PyTorch with CUDA. Generated
data, checkpoints and logs live in the git-ignored `models/training/work/`.
"""
    with open(os.path.join(args.models_dir, "README.md"), "w", encoding="utf-8") as f:
        f.write(card)
    print(f"wrote {os.path.join(args.models_dir, 'README.md')}")


if __name__ == "__main__":
    main()
