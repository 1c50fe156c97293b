"""The instrument of the walkthrough (docs/loop.md): x = exp(-0.3 t) cos(2 t) with noise of 1%
of its RMS on 0..10 (sd 0.0035). Appends the measurements at the times in NEXT to DATA:

    python measure.py DATA NEXT OUT ROUND
"""

import sys

import numpy as np
import pandas as pd


def main() -> None:
    data, new, out, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    t = pd.read_csv(new)["t"].to_numpy()
    x = np.exp(-0.3 * t) * np.cos(2 * t) + 0.0035 * np.random.default_rng(k).standard_normal(len(t))
    frame = pd.concat([pd.read_csv(data), pd.DataFrame({"t": t, "x": x.round(5)})])
    frame.to_csv(out, index=False)


if __name__ == "__main__":
    main()
