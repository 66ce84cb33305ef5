#!/usr/bin/env bash
# EMT Table 2: the MLLM as an image classifier, beside its own vision encoder zero-shot.
#   MODEL=llava-hf/llava-1.5-7b-hf CLIP=openai/clip-vit-large-patch14-336 ./examples/emt_vs_vision_encoder.sh
#   MFCLI="accelerate launch -m mfcli" ...   # every GPU
# DATASETS: prepare sources (mnist, cifar10, cifar100, a folder, a CSV) or prepared dirs; miniImageNet
# comes as a folder or CSV with `--label-names` mapping its wnids (prepare it yourself and pass the dir).
. "$(dirname "$0")/common.sh"
CLIP=${CLIP:-openai/clip-vit-large-patch14-336}   # LLaVA-1.5's vision tower; tiny-clip for tiny
DATASETS=${DATASETS:-mnist cifar10 cifar100}

dirs=()
for d in $DATASETS; do dirs+=("$(data "$d")"); done
evaluate "$MODEL" mllm "${dirs[@]}"
evaluate "$CLIP" vision-encoder "${dirs[@]}"
report
