#!/usr/bin/env bash
# d2f-lite-2's depth stage on one GPU (an H200) in at most about 7 minutes: trains
# configs/lite2_depth.yaml, exports the model to $OUT/lite2/model, prints the validation metrics and
# the held-out depth table, and leaves the logs in $OUT/lite2. Run from the repository root, with the
# RGB-D cache (scripts/cache_rgbd.py) at cache/rgbd:
#   OUT=/some/folder PYTHONPATH=src bash scripts/gpu_train_lite2.sh [KEY=VALUE config overrides]
# Training stops after TIME_LIMIT seconds even if it has not reached its steps: it then validates,
# saves and exports what it has (run.time_limit). A test on the CPU with tiny settings:
#   OUT=/tmp/out TIME_LIMIT=60 WORKERS=1 PYTHONPATH=src bash scripts/gpu_train_lite2.sh \
#     run.steps=4 run.batch_size=2 run.val_every=2 data.val_count=2 run.device=cpu
set -uo pipefail
OUT=${OUT:?set OUT to the folder whose files come back}
TIME_LIMIT=${TIME_LIMIT:-300}   # seconds of training, start-up, validations and export excluded
WORKERS=${WORKERS:-14}
RUN=${RUN:-/tmp/d2f_lite2_run}   # outside the repository: a fresh run each time
export PYTHONPATH=${PYTHONPATH:-src}
mkdir -p "$OUT/lite2"
rm -rf "$RUN"
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name(0))"
start=$(date +%s)
python -m d2f train --config configs/lite2_depth.yaml --out "$RUN" --no-progress \
    data.num_workers="$WORKERS" run.time_limit="$TIME_LIMIT" "$@" 2>&1 | tee "$OUT/lite2/train.log"
train_status=${PIPESTATUS[0]}
echo "training: exit $train_status after $(( $(date +%s) - start )) s"
if [ ! -f "$RUN/model/model.safetensors" ] && [ -f "$RUN/checkpoints/last.pt" ]; then
    echo "no exported model: exporting the last checkpoint"
    python scripts/checkpoint_to_model.py "$RUN/checkpoints/last.pt" "$RUN/model"
fi
cp "$RUN/metrics.csv" "$RUN/config.yaml" "$OUT/lite2/" 2>/dev/null
last_sheet=$(ls "$RUN"/samples/*.png 2>/dev/null | tail -1)
[ -n "$last_sheet" ] && cp "$last_sheet" "$OUT/lite2/"
if [ ! -f "$RUN/model/model.safetensors" ]; then
    echo "FAILED: no model to export"
    exit 1
fi
cp -r "$RUN/model" "$OUT/lite2/model"
echo "validation rows (metrics.csv):"
grep -E '^[0-9]+,[^,]*,[^,]*,[^,]*,[0-9]' "$RUN/metrics.csv" | cut -d, -f1,5,8-10 | sed 's/^/  step,val_loss,absrel,delta1,spearman: /'
python scripts/orient_model.py "$OUT/lite2/model" --cache cache/rgbd --out "$RUN/oriented" 2>&1 | tee "$OUT/lite2/orientation.txt"
python scripts/depth_eval.py --weights "$OUT/lite2/model" --cache cache/rgbd 2>&1 | tee "$OUT/lite2/depth_eval.txt"
echo "done in $(( $(date +%s) - start )) s"
exit "$train_status"
