#!/usr/bin/env bash
# MDGD Table 1: fine-tune with MDGD and MDGD-GM against LoRA and full fine-tuning on a target; score the
# target and the tasks the model knew; the effective rank of the visual features before and after (Fig. 4).
#   MODEL=llava-hf/llava-1.5-7b-hf TARGET=cifar10 KNOWN="mnist cifar100" ./examples/mdgd.sh
#   MFCLI="accelerate launch -m mfcli" ...   # every GPU
. "$(dirname "$0")/common.sh"
TARGET=${TARGET:-cifar10}
KNOWN=${KNOWN:-mnist cifar100}
METHODS=${METHODS:-lora full mdgd mdgd-gm}

target=$(data "$TARGET")
dirs=()
for d in $KNOWN; do dirs+=("$(data "$d")"); done
dirs+=("$target")
evaluate "$MODEL" base "${dirs[@]}"
models=("$MODEL")
for m in $METHODS; do
  finetune "$m" "$m" "$target"
  evaluate "$OUT/$m/epoch-$EPOCHS" "$m" "${dirs[@]}"
  models+=("$OUT/$m/epoch-$EPOCHS")
done
if [ ! -f "$OUT/rank.jsonl" ]; then
  log "rank"
  mfcli rank "${models[@]}" $(printf -- "--data %s " "${dirs[@]}") --nsamples "$NSAMPLES" --out "$OUT/rank.jsonl" >&2
fi
report --target "$(basename "$target")"
