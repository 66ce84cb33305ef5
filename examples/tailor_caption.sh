#!/usr/bin/env bash
# Model Tailor Table 2: fine-tune on a caption set (the paper: Flickr30k, CIDEr), then keep a 10 % patch
# (Model Tailor as published — `--variant paper` — and mfcli's refined decorator, the default) against DARE
# and task arithmetic at the same budget; score the caption target and what the model knew before.
#   MODEL=llava-hf/llava-1.5-7b-hf TARGET=data/flickr30k KNOWN="data/vqav2 data/gqa" ./examples/tailor_caption.sh
#   (mfcli prepare turns Flickr30k's captions CSV/JSON or LLaVA's instruction JSON into TARGET)
. "$(dirname "$0")/common.sh"
TARGET=${TARGET:?set TARGET to a caption data set (a prepared dir or a prepare source)}
KNOWN=${KNOWN:?set KNOWN to the tasks the model knew before (prepared dirs or prepare sources)}
METHOD=${METHOD:-full}          # the paper tailors a full or last-layers fine-tune; lora adapters work too
SPARSITY=${SPARSITY:-0.1}

target=$(data "$TARGET")
dirs=()
for d in $KNOWN; do dirs+=("$(data "$d")"); done
dirs+=("$target")
evaluate "$MODEL" base "${dirs[@]}"
finetune "$METHOD" sft "$target"
sft="$OUT/sft/epoch-$EPOCHS"
evaluate "$sft" sft "${dirs[@]}"
for m in tailor dare task-arithmetic; do
  tailor "$m" "$sft" -- --method "$m" --sparsity "$SPARSITY" --data "$target/train.jsonl"
  evaluate "$OUT/tailor/$m" "$m" "${dirs[@]}"
done
tailor tailor-paper "$sft" -- --variant paper --sparsity "$SPARSITY" --data "$target/train.jsonl"
evaluate "$OUT/tailor/tailor-paper" tailor-paper "${dirs[@]}"
tailor tailor-no-compensation "$sft" -- --no-compensate --sparsity "$SPARSITY" --data "$target/train.jsonl"
evaluate "$OUT/tailor/tailor-no-compensation" tailor-no-compensation "${dirs[@]}"
report --target "$(basename "$target")"
