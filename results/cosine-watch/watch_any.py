"""Run a script with forward.kept patched to record cosines and leave meta unchanged.
usage: python watch_any.py BLOCK script.py args..."""
import runpy, sys
import adaloss.hypergrad.forward as forward
block = int(sys.argv[1]); script = sys.argv[2]; sys.argv = [script] + sys.argv[3:]
seen = []
def dot(a, b): return float(sum((x.double() * y.double()).sum() for x, y in zip(a, b)))
def counted(meta, fit, rule):
    inner = dot(meta, fit); n = (dot(meta, meta) * dot(fit, fit)) ** 0.5
    seen.append((inner < 0, inner / n if n > 0 else 0.0)); return meta
forward.kept = counted
try:
    runpy.run_path(script, run_name="__main__")
finally:
    # runs concatenated: each run's meta steps follow the previous run's
    for s in range(0, len(seen), block):
        b = seen[s:s + block]
        print(f"{s:>6}-{s+len(b):<7} {sum(c for c,_ in b)/len(b):>8.3f} {sum(c for _,c in b)/len(b):>8.3f}")
