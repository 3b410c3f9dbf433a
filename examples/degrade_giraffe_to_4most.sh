#!/usr/bin/env bash
# Acceptance of the degrade workflow (issue 7): Gaia-ESO GIRAFFE HR15N spectra (simulated) degraded to 4MOST-LR
# (R 6500, its grid, cropped to the HR15N range), a CNN trained on them, evaluated on independently simulated
# 4MOST-LR spectra.
#   bash examples/degrade_giraffe_to_4most.sh [WORK]   (N_SOURCE, N_TARGET, EPOCHS override the sizes)
set -euo pipefail
WORK=${1:-work_degrade}
N_SOURCE=${N_SOURCE:-8000}
N_TARGET=${N_TARGET:-3000}
EPOCHS=${EPOCHS:-30}
mkdir -p "$WORK"
t0=$(date +%s)
# the source survey: GIRAFFE HR15N at S/N 50-100, ingested with its own descriptor
starlabel simulate gaia_eso_giraffe --n "$N_SOURCE" --snr 50:100 --seed 11 --out "$WORK/sim_giraffe" --quiet
starlabel ingest "$WORK/sim_giraffe/gaia_eso_giraffe.yaml" --store "$WORK/giraffe.zarr" --data "$WORK/sim_giraffe" --quiet
# the target instrument, simulated independently (its derived descriptor carries the simulated grid)
starlabel simulate fourmost_lr --n "$N_TARGET" --snr 20:40 --seed 12 --out "$WORK/sim_4most" --quiet
# GIRAFFE -> 4MOST-LR: R 17000 -> 6500, onto the 4MOST grid cropped to the HR15N range, S/N 20-40
starlabel degrade "$WORK/giraffe.zarr" --to "$WORK/sim_4most/fourmost_lr.yaml" --out "$WORK/giraffe_as_4most.zarr" \
  --snr 20:40 --crop --quiet
# the cropped descriptor + a network section -> the descriptor the team trains and ingests 4MOST spectra with
python - "$WORK" <<'PY'
import sys
from pathlib import Path
import yaml
work = Path(sys.argv[1])
text = yaml.safe_load((work / "giraffe_as_4most.zarr.descriptor.yaml").read_text())
text["network"] = {"architecture": "hybrid_cnn", "options": {"conv_filters": [16, 32, 32], "kernel_size": 7,
                   "pool": 2, "spectrum_features": 128, "aux_layers": [], "head_layers": [256, 128],
                   "dropout": 0.1, "variance_head": True}}
text.setdefault("training", {}).update({"epochs": 30, "batch_size": 128, "patience": 8})
text["data"] = {"root": str((work / "sim_4most").resolve()), "spectra": "spectra/*.fits",
                "labels": "truth.fits"}
(work / "fourmost_cropped.yaml").write_text(yaml.safe_dump(text, sort_keys=False))
PY
starlabel ingest "$WORK/fourmost_cropped.yaml" --store "$WORK/4most.zarr" --quiet
echo "simulate + ingest + degrade: $(( $(date +%s) - t0 )) s"
t1=$(date +%s)
starlabel train "$WORK/fourmost_cropped.yaml" --store "$WORK/giraffe_as_4most.zarr" --out "$WORK/bundle" \
  --epochs "$EPOCHS" --ensemble 1 --quiet
echo "train: $(( $(date +%s) - t1 )) s"
starlabel predict "$WORK/bundle" --store "$WORK/4most.zarr" --out "$WORK/4most.fits" --quiet
starlabel evaluate "$WORK/4most.fits" --truth "$WORK/4most.zarr" --out "$WORK/evaluation"
# the same network trained on the degraded store, evaluated on its own held-out (degraded) test split
starlabel predict "$WORK/bundle" --store "$WORK/giraffe_as_4most.zarr" --split test --out "$WORK/degraded_test.fits" --quiet
starlabel evaluate "$WORK/degraded_test.fits" --truth "$WORK/giraffe_as_4most.zarr" --out "$WORK/evaluation_degraded"
echo "total: $(( $(date +%s) - t0 )) s"
