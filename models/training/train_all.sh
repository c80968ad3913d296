#!/usr/bin/env bash
# Regenerates the synthetic data, trains the clean tiny CLIP and its FARE-robust image tower, exports the three
# ONNX towers with manifests, evaluates them on a held-out split, writes the parity fixtures and rewrites
# models/README.md. `npm run models:train` runs this. Sized for a 2-core CPU: about 60-75 minutes of training.
#
# Knobs (environment): TRAIN_COUNT, TEST_COUNT, TRAIN_SEED, TEST_SEED, CLIP_EPOCHS, FARE_EPOCHS, DEVICE (auto|cpu|cuda),
# FARE_LR (default 1e-3, the best of a GPU sweep; see the model card), CLIP_MINUTES, FARE_MINUTES (time budgets: a schedule that would overrun is shortened to fit, so the cosine
# decay still completes), THREADS, PYTHON, WORK (default models/training/work), MODELS_DIR (default models/),
# ATTACK_QUERIES. Stages can be skipped with SKIP_DATA=1 / SKIP_CLIP=1 / SKIP_FARE=1 (they reuse work/).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
WORK="${WORK:-$HERE/work}"
PYTHON="${PYTHON:-/usr/bin/python3}"
TRAIN_COUNT="${TRAIN_COUNT:-10000}"
TEST_COUNT="${TEST_COUNT:-1000}"
TRAIN_SEED="${TRAIN_SEED:-7}"
TEST_SEED="${TEST_SEED:-1007}"
CLIP_EPOCHS="${CLIP_EPOCHS:-10}"
FARE_EPOCHS="${FARE_EPOCHS:-1.5}"
DEVICE="${DEVICE:-auto}"
THREADS="${THREADS:-2}"
MODELS_DIR="${MODELS_DIR:-$ROOT/models}"
ATTACK_QUERIES="${ATTACK_QUERIES:-400}"
COMMON=(--device "$DEVICE" --threads "$THREADS")

mkdir -p "$WORK"
cd "$HERE"
start=$(date +%s)
stamp() { echo "[train_all $(( $(date +%s) - start ))s] $*"; }

if [[ "${SKIP_DATA:-0}" != 1 ]]; then
  stamp "building the CLI and generating the catalogs (train seed $TRAIN_SEED x $TRAIN_COUNT, test seed $TEST_SEED x $TEST_COUNT)"
  (cd "$ROOT" && npx tsc -b apps/cli)
  rm -rf "$WORK/train" "$WORK/test"
  (cd "$ROOT" && node apps/cli/dist/main.js synth --count "$TRAIN_COUNT" --seed "$TRAIN_SEED" --out "$WORK/train" --twins)
  (cd "$ROOT" && node apps/cli/dist/main.js synth --count "$TEST_COUNT" --seed "$TEST_SEED" --out "$WORK/test" --twins)
fi
data_done=$(date +%s)

if [[ "${SKIP_CLIP:-0}" != 1 ]]; then
  stamp "training the clean model"
  "$PYTHON" train_clip.py --data "$WORK/train" --out "$WORK/clean.pt" --tokenizer-out "$WORK/tokenizer.json" \
    --epochs "$CLIP_EPOCHS" --max-minutes "${CLIP_MINUTES:-30}" "${COMMON[@]}"
fi
if [[ "${SKIP_FARE:-0}" != 1 ]]; then
  stamp "FARE fine-tuning the image tower"
  "$PYTHON" train_fare.py --data "$WORK/train" --clean "$WORK/clean.pt" --out "$WORK/fare4.pt" \
    --epochs "$FARE_EPOCHS" --eps 4 --pgd-steps 10 --pgd-step-size 1 --lr "${FARE_LR:-1e-3}" --max-minutes "${FARE_MINUTES:-38}" "${COMMON[@]}"
fi
train_done=$(date +%s)

stamp "exporting ONNX towers"
"$PYTHON" export.py --clean "$WORK/clean.pt" --robust "$WORK/fare4.pt" --tokenizer "$WORK/tokenizer.json" \
  --models-dir "$MODELS_DIR"
stamp "evaluating on the held-out split"
"$PYTHON" evaluate.py --data "$WORK/test" --clean "$WORK/clean.pt" --robust "$WORK/fare4.pt" \
  --tokenizer "$WORK/tokenizer.json" --out "$WORK/metrics.json" --attack-queries "$ATTACK_QUERIES" "${COMMON[@]}"
stamp "writing parity fixtures"
"$PYTHON" fixtures.py --data "$WORK/test" --models-dir "$MODELS_DIR" --clean "$WORK/clean.pt" \
  --robust "$WORK/fare4.pt" --out "$MODELS_DIR/fixtures"
end=$(date +%s)
cat > "$WORK/timing.json" <<JSON
{"dataSeconds": $(( data_done - start )), "trainSeconds": $(( train_done - data_done )), "exportEvalSeconds": $(( end - train_done )), "totalSeconds": $(( end - start ))}
JSON
stamp "writing the model card"
"$PYTHON" write_card.py --metrics "$WORK/metrics.json" --timing "$WORK/timing.json" --models-dir "$MODELS_DIR"
stamp "done"
