"""Per replay: the learned loss's lead over the twin at each window in standard errors of the
paired per-example difference over the window's distinct check examples (t = −mean / (sd /
√n)), and when a rule "the twin wins a window unless the lead is at least z standard errors;
hand over after 5 such windows in a row" would hand over, for z = 1 and 1.645.

    python results/check-evidence/summarize.py results/check-evidence/*.json
"""

import json
import math
import sys

for path in sys.argv[1:]:
    run = json.load(open(path))
    windows = run["windows"]
    leads = []
    for w in windows:
        se = w["key_sd"] / math.sqrt(w["distinct"]) if w["distinct"] > 1 else math.inf
        leads.append(-w["key_mean"] / se if se > 0 else math.inf)
    line = [f"{run['task']} {run['model']} seed {run['seed']}: n = {windows[0]['distinct']},"
            f" committed hand-over {run['handed_over_at']}, same run {run['same_run']}"]
    for z in (1.0, 1.645):
        behind, at = 0, None
        for i, t in enumerate(leads):
            behind = behind + 1 if not t >= z else 0
            if behind == 5:
                at = 200 * (i + 1)
                break
        line.append(f"  z {z}: hands over at {at}")
    lead = [-w["key_mean"] for w in windows]
    line.append(f"  lead (model ahead > 0): median {sorted(lead)[len(lead) // 2]:+.4f},"
                f" t median {sorted(leads)[len(leads) // 2]:.2f}, t by window:")
    line.append("   " + " ".join(f"{t:.1f}" for t in leads))
    print("\n".join(line))
