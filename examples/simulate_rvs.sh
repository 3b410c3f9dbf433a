#!/usr/bin/env bash
# Acceptance of the simulate workflow (issue 7): a hybrid CNN with auxiliary inputs trained on simulated Gaia RVS
# spectra at S/N 15-25 from the mock Galaxy, applied to an independently simulated sample, whose chemistry map
# should show the thin- and thick-disc [alpha/M] sequences.
#   bash examples/simulate_rvs.sh [WORK]     (N_TRAIN, N_APPLY, EPOCHS, ENSEMBLE override the sizes)
set -euo pipefail
WORK=${1:-work_simulate_rvs}
N_TRAIN=${N_TRAIN:-16000}
N_APPLY=${N_APPLY:-6000}
EPOCHS=${EPOCHS:-25}
ENSEMBLE=${ENSEMBLE:-1}
mkdir -p "$WORK"
t0=$(date +%s)
starlabel simulate gaia_rvs_dr3 --n "$N_TRAIN" --snr 15:25 --seed 1 --out "$WORK/sim_train" --quiet
starlabel simulate gaia_rvs_dr3 --n "$N_APPLY" --snr 15:25 --seed 2 --out "$WORK/sim_apply" --quiet
starlabel ingest "$WORK/sim_train/gaia_rvs_dr3.yaml" --store "$WORK/train.zarr" --data "$WORK/sim_train" --quiet
starlabel ingest "$WORK/sim_apply/gaia_rvs_dr3.yaml" --store "$WORK/apply.zarr" --data "$WORK/sim_apply" --quiet
echo "simulate + ingest: $(( $(date +%s) - t0 )) s"
t1=$(date +%s)
starlabel train "$WORK/sim_train/gaia_rvs_dr3.yaml" --store "$WORK/train.zarr" --out "$WORK/bundle" \
  --epochs "$EPOCHS" --ensemble "$ENSEMBLE" --quiet
echo "train: $(( $(date +%s) - t1 )) s"
starlabel predict "$WORK/bundle" --store "$WORK/apply.zarr" --out "$WORK/apply.fits" --quiet
starlabel evaluate "$WORK/apply.fits" --truth "$WORK/apply.zarr" --out "$WORK/evaluation"
starlabel plot chemistry "$WORK/apply.fits" --positions "$WORK/sim_apply/truth.fits" --out "$WORK/chemistry.png"
# the same map from the true labels, for comparison
python - "$WORK" <<'PY'
import sys
from pathlib import Path
from astropy.table import Table
work = Path(sys.argv[1])
truth = Table.read(work / "sim_apply" / "truth.fits")
truth.keep_columns(["source_id", "teff", "logg", "m_h", "alpha_m", "ra", "dec", "parallax"])
truth.write(work / "truth_catalogue.fits", overwrite=True)
PY
starlabel plot chemistry "$WORK/truth_catalogue.fits" --out "$WORK/chemistry_truth.png" || true
echo "total: $(( $(date +%s) - t0 )) s"
