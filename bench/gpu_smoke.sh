#!/usr/bin/env bash
# GPU smoke: every command that uses the GPU, on CUDA, with the built-in tiny — a check of an install on a
# GPU machine, not a speed figure (docs/benchmarks.md, "GPU smoke").   bash bench/gpu_smoke.sh [WORKDIR]
set -uo pipefail
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -c "import torch, transformers, peft, accelerate; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'accelerate', accelerate.__version__, torch.cuda.get_device_name())"
W=${1:-$(mktemp -d)}; mkdir -p $W; echo "work dir: $W"
step() { local name=$1; shift; local t=$(date +%s.%N); if "$@" > $W/$name.log 2>&1; then echo "OK   $name $(python3 -c "print(f'{$(date +%s.%N)-$t:.1f} s')")"; else echo "FAIL $name"; tail -25 $W/$name.log; fi; }
step prepare-digits mfcli prepare digits --out $W/data/digits
step prepare-counting mfcli prepare counting --out $W/data/counting
step prepare-animals mfcli prepare animals --limit 2500 --out $W/data/animals
step emt-tiny mfcli emt tiny $W/data/digits $W/data/counting $W/data/animals --out $W/tiny.jsonl --judge exact --batch-size 64
step emt-clip mfcli emt tiny-clip $W/data/digits $W/data/animals --out $W/clip.jsonl --judge exact
for m in full lora lastn linear mdgd mdgd-gm; do
  step ft-$m mfcli finetune tiny $W/data/counting --method $m --epochs 1 --out $W/$m
done
step ft-lora-merge mfcli finetune tiny $W/data/counting --method lora --epochs 1 --merge --out $W/lora-merged
step emt-full mfcli emt $W/full/epoch-1 $W/data/digits $W/data/counting --out $W/full.jsonl --judge exact
step emt-lora mfcli emt $W/lora/epoch-1 $W/data/digits $W/data/counting --out $W/lora.jsonl --judge exact
step tailor mfcli tailor tiny $W/full/epoch-1 --sparsity 0.1 --out $W/tailored
step tailor-lora mfcli tailor tiny $W/lora/epoch-1 --sparsity 0.1 --out $W/tailored-lora
step emt-tailored mfcli emt $W/tailored $W/data/digits $W/data/counting --out $W/tailored.jsonl --judge exact
step rank mfcli rank tiny $W/full/epoch-1 --data $W/data/digits --data $W/data/counting --out $W/rank.jsonl
step report mfcli report $W/tiny.judged.jsonl $W/full.judged.jsonl $W/lora.judged.jsonl $W/tailored.judged.jsonl $W/rank.jsonl --out $W/report.md
step accelerate-example env MODEL=tiny TARGET=counting KNOWN=digits METHODS="lora mdgd" EPOCHS=1 OUT=$W/ex MFCLI="accelerate launch --num_processes 1 -m mfcli" bash examples/mdgd.sh
for f in tiny full lora tailored; do python3 -c "
import json; s=json.load(open('$W/$f.summary.json'))['tasks']; print('$f', {t: round(100*v['score'],1) for t, v in s.items()})"; done
