#!/usr/bin/env bash
# The learning-recipe sweep of docs/LEARNING.md: fixed-step runs of `dinots train` (the same steps on any machine, so
# the k-NN figures do not depend on the machine's speed), each setting with 2 seeds, evaluated on the first 10000
# training and 2000 test digits (teacher and student, CLS and CLS + mean patch, raw pixels, linear probe, attention).
#   bash bench/learning_sweep.sh [STEPS] [OUT]      (default 1500 steps; ~4 min a run on 2 cores)
# Every setting runs one replica (--data_parallel 1: one batch of 32 per step) unless it names --data_parallel, so a
# step means the same on any machine; `dinots train` itself runs one replica per core (the replicas_2 rows).
# Results: OUT/<setting>-s<seed>/summary.json; a table of them: node bench/learning_table.mjs OUT
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-1500}
OUT=${2:-runs/sweep}
EVAL="--knn-train mnist:train:10000 --knn-test mnist:test:2000 --knn_evals 0"
FORMER="--pos_embed_init trunc_normal --color_augment false --head_hidden_dim 256 --head_bottleneck_dim 64 --set dino.head_nlayers=3"
declare -A SETTINGS=(
  [default]=""
  [former_defaults]="$FORMER"
  [no_sincos]="--pos_embed_init trunc_normal"
  [no_augment]="--color_augment false"
  [head_3_layers]="--head_hidden_dim 256 --head_bottleneck_dim 64 --set dino.head_nlayers=3"
  [local_6x20]="--local_crops_number 6 --local_crop_size 20 --global_crops_scale 0.7 1"
  [temp_003_007_m996]="--warmup_teacher_temp 0.03 --teacher_temp 0.07 --set teacher.warmup_teacher_temp_fraction=0.3 --momentum_teacher 0.996"
  [lr_x3]="--lr 0.024"
  [width_128]="--embed_dim 128 --num_heads 4"
  [batch_128]="--batch_size_per_gpu 128 --steps $((STEPS / 4))"
  [replicas_2]="--data_parallel 2"
  [replicas_2_lr_half]="--data_parallel 2 --lr 0.004"
)
for name in "${!SETTINGS[@]}"; do
  for seed in 0 1; do
    dir="$OUT/$name-s$seed"
    [ -f "$dir/summary.json" ] && continue
    rm -rf "$dir"
    dp=$([[ "${SETTINGS[$name]}" == *--data_parallel* ]] || echo "--data_parallel 1")
    # shellcheck disable=SC2086
    DINOTS_NUM_THREADS=${DINOTS_NUM_THREADS:-1} npx dinots train --steps "$STEPS" --seed "$seed" $EVAL $dp ${SETTINGS[$name]} --out "$dir" > "$dir.log" 2>&1 || echo "$name seed $seed failed: see $dir.log"
  done
done
node bench/learning_table.mjs "$OUT"
