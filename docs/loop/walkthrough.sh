#!/usr/bin/env bash
# Remakes docs/loop/: five rounds of solve, suggest 3 points, measure them (measure.py plays
# the instrument), from round0.csv. Run from the repository root: bash docs/loop/walkthrough.sh
set -euo pipefail
cd "$(dirname "$0")"
induce=../../.venv/bin/induce
python=../../.venv/bin/python
for r in 0 1 2 3 4; do
  $induce suggest --csv round$r.csv --target x -n 3 --bounds t=0:10 --calls 20000 --seconds 120 \
    --plot round$r.png --out next$r.csv --force 2> round$r.txt
  grep "^found" round$r.txt
  $python measure.py round$r.csv next$r.csv round$((r + 1)).csv $((r + 1))
done
