# Shared by the example pipelines: variables every script reads, and the steps they share.
# Each step is skipped when its output exists, so a pipeline stopped half-way is re-run as it is.
set -euo pipefail

MODEL=${MODEL:-llava-hf/llava-1.5-7b-hf}   # a LLaVA-family checkpoint dir or hub id; tiny for a dry run
OUT=${OUT:-runs/$(basename "$0" .sh)}
EPOCHS=${EPOCHS:-3}                        # EMT fine-tunes 3 epochs and evaluates after each
LIMIT=${LIMIT:-}                           # examples per data set (a seeded sample); empty: all
NSAMPLES=${NSAMPLES:-128}                  # Model Tailor's calibration examples
# How the GPU-heavy commands start: "accelerate launch -m mfcli" (or "torchrun --nproc_per_node 8 -m mfcli")
# spreads emt and finetune over every GPU; prepare, tailor, judge and report run as one process.
MFCLI=${MFCLI:-mfcli}
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-0}

log() { echo "[$(basename "$0" .sh)] $*" >&2; }

# data SOURCE -> a prepared directory: SOURCE itself when it is one, else `mfcli prepare SOURCE` under OUT/data
data() {
  local src=$1
  if [ -f "$src/dataset.json" ]; then echo "$src"; return; fi
  local dir="$OUT/data/$(echo "$src" | tr '/' '-')"
  if [ ! -f "$dir/dataset.json" ]; then
    log "prepare $src"
    mfcli prepare "$src" --out "$dir" ${LIMIT:+--limit "$LIMIT"} >&2
  fi
  echo "$dir"
}

# evaluate MODEL NAME DATA... -> OUT/eval/NAME.judged.jsonl (EMT prompt, greedy answers, judged by kind)
evaluate() {
  local model=$1 name=$2; shift 2
  local preds="$OUT/eval/$name.jsonl"
  mkdir -p "$OUT/eval"
  if [ ! -f "$OUT/eval/$name.judged.jsonl" ]; then
    log "emt $name"
    $MFCLI emt "$model" "$@" --out "$preds" --judge "${JUDGE:-exact}" >&2
  fi
}

# finetune METHOD NAME DATA [finetune flags...] -> OUT/NAME/epoch-1..EPOCHS
finetune() {
  local method=$1 name=$2 data=$3; shift 3
  if [ ! -d "$OUT/$name/epoch-$EPOCHS" ]; then
    log "finetune $name ($method, $EPOCHS epochs)"
    local resume=()
    [ -d "$OUT/$name" ] && resume=(--resume)
    $MFCLI finetune "$MODEL" "$data" --method "$method" --epochs "$EPOCHS" --out "$OUT/$name" "${resume[@]}" "$@" >&2
  fi
}

# tailor NAME SFT... [-- tailor flags...] -> OUT/tailor/NAME
tailor() {
  local name=$1; shift
  local sfts=() flags=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do sfts+=("$1"); shift; done
  [ $# -gt 0 ] && shift && flags=("$@")
  if [ ! -d "$OUT/tailor/$name" ]; then
    log "tailor $name"
    mfcli tailor "$MODEL" "${sfts[@]}" --nsamples "$NSAMPLES" --out "$OUT/tailor/$name" "${flags[@]}" >&2
  fi
}

# report [report flags...] -> OUT/report.html and OUT/report.md (every judged file, run and rank record in OUT)
report() {
  local inputs=("$OUT"/eval/*.judged.jsonl)
  [ -f "$OUT/rank.jsonl" ] && inputs+=("$OUT/rank.jsonl")
  mfcli report "${inputs[@]}" "$@" --overwrite --out "$OUT/report.md" >&2
  mfcli report "${inputs[@]}" "$@" --overwrite --out "$OUT/report.html"
}
