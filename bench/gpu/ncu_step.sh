#!/usr/bin/env bash
# Per-kernel GPU times of one eager batch-1 decode step of the Llama-3.1-8B-shaped model under
# Nsight Compute (kernels serialised, caches not flushed, clocks not locked), summed by kernel
# name; compare the total with bench-decode's step time to see the gaps between kernels.
#   bash bench/gpu/ncu_step.sh      (after run_bench.sh made /tmp/llama8b and the build)
set -uo pipefail
OUT=${OUT:-/tmp/mlxs_ncu_out}
MODEL=${MODEL:-/tmp/llama8b}
mkdir -p "$OUT"
[ -f $MODEL/config.json ] || ./build/cuda/mlx-serving make-random-model --shape llama-3.1-8b --dtype bf16 --out $MODEL | tail -1
# Skip the 512-token prefill and two decode steps, then take one step's launches.
timeout 300 ncu --metrics gpu__time_duration.sum --cache-control none --clock-control none \
  --launch-skip "${SKIP:-1200}" --launch-count "${COUNT:-240}" --csv --page raw \
  ./build/cuda/mlx-serving bench-decode --model $MODEL --backend cuda --quick --no-graphs \
  --no-pipeline --steps 12 > "$OUT/ncu.csv" 2> "$OUT/ncu.err"
echo "ncu exit $?"; tail -3 "$OUT/ncu.err"
python3 - "$OUT/ncu.csv" <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 5]
hi = next((i for i, r in enumerate(rows) if r[0] == "ID"), None)  # the program prints first
if hi is None: sys.exit("no ncu rows")
rows = rows[hi:]
head = rows[0]; ki = head.index("Kernel Name"); ti = head.index("gpu__time_duration.sum")
tot = collections.defaultdict(float); cnt = collections.Counter()
for r in rows[2:]:
    try: t = float(r[ti].replace(",", ""))
    except ValueError: continue
    name = r[ki].split("(")[0].split("<")[0][-60:]
    tot[name] += t; cnt[name] += 1
unit = rows[1][ti]
s = sum(tot.values())
print(f"{len(rows) - 2} kernels, total {s:.0f} {unit}")
for n, t in sorted(tot.items(), key=lambda x: -x[1]):
    print(f"| {n} | {cnt[n]} | {t:.0f} | {t / cnt[n]:.1f} | {100 * t / s:.1f} % |")
PY
