#!/usr/bin/env bash
# EMT Table 3: fine-tune on each data set with linear (projector) and LoRA for 3 epochs, and after every
# epoch evaluate on all of them: the diagonal is learning, the rest is forgetting.
#   MODEL=llava-hf/llava-1.5-7b-hf ./examples/emt_forgetting.sh
#   MFCLI="accelerate launch -m mfcli" ...   # every GPU
. "$(dirname "$0")/common.sh"
DATASETS=${DATASETS:-mnist cifar10 cifar100}
METHODS=${METHODS:-linear lora}

dirs=()
for d in $DATASETS; do dirs+=("$(data "$d")"); done
evaluate "$MODEL" base "${dirs[@]}"
for target in "${dirs[@]}"; do
  for method in $METHODS; do
    name="$(basename "$target")-$method"
    finetune "$method" "$name" "$target"
    for e in $(seq 1 "$EPOCHS"); do evaluate "$OUT/$name/epoch-$e" "$name-$e" "${dirs[@]}"; done
  done
done
# one report per target: its fine-tunes against the base, the other data sets as what the model knew
for target in "${dirs[@]}"; do
  t=$(basename "$target")
  mfcli report "$OUT/eval/base.judged.jsonl" "$OUT/eval/$t"-*.judged.jsonl --target "$t" \
    --overwrite --out "$OUT/report-$t.md" >&2
done
# and EMT Table 3 itself: every fine-tune (rows) on every data set (columns)
report $(for d in "${dirs[@]}"; do printf -- "--target %s " "$(basename "$d")"; done)
