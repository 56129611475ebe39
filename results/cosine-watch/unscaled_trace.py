import sys, itertools, torch
sys.path.insert(0, "/work/snap-u/scripts")
import outside_data_probe as probe
from torch.utils.data import DataLoader, TensorDataset
import adaloss
lr = float(sys.argv[1]); seeds = [int(s) for s in sys.argv[2].split(",")]; every = int(sys.argv[3])
name = sys.argv[4] if len(sys.argv) > 4 else "unscaled"
stop = int(sys.argv[5]) if len(sys.argv) > 5 else None  # given: stop then, print the slope at p=t
for seed in seeds:
    (x_tr, y_tr), (x_val, y_val), (x_te, y_te), task = probe.splits(name, seed, "selection", True)
    g = torch.Generator().manual_seed(seed)
    tl = DataLoader(TensorDataset(x_tr, y_tr), 32, shuffle=True, generator=g)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(x_tr.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    opt = adaloss.MetaLossOptimizer(model, torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9), task)
    opt.initialize(tl)
    vl = DataLoader(TensorDataset(x_val, y_val), 32, shuffle=True, generator=g)
    t = 0; clipped = 0; ratios = []; coss = []
    print(f"seed {seed} c={opt.loss.input_center} s={opt.loss.input_scale}")
    for ep in range(100):
        if stop is not None and t >= stop: break
        for (x, y), (xv, yv) in zip(tl, itertools.cycle(vl)):
            if opt.twin is not None:
                p = model(x).detach().requires_grad_()
                gl = torch.autograd.grad(opt.loss(p, y), p)[0]; gt = torch.autograd.grad(task.loss(p, y), p)[0]
                ratios.append(float(gl.norm() / gt.norm())); coss.append(float(torch.nn.functional.cosine_similarity(gl.flatten(), gt.flatten(), 0)))
            r = opt.step(x, y, xv, yv); t += 1
            clipped += int(r.loss_scale is not None and float(r.loss_scale) < 1)
            if t % every == 0:
                with torch.no_grad():
                    m = float(task.error(model(x_te), y_te)); tr = float(task.error(model(x_tr), y_tr))
                    tw = float(task.error(opt.twin.model(x_te), y_te)) if opt.twin is not None else float("nan")
                    twt = float(task.error(opt.twin.model(x_tr), y_tr)) if opt.twin is not None else float("nan")
                n = len(ratios) or 1
                if stop is not None:
                    tt = y[:8]
                    pp = tt.clone().requires_grad_()
                    g0 = torch.autograd.grad(opt.loss(pp, tt), pp)[0] * pp.shape[0]
                    print("     slope at p=t (should be 0):", [round(float(v), 1) for v in g0.flatten()[:4]], "pred mean/std", round(float(model(x).mean()),1), round(float(model(x).std()),1), "target mean/std", round(float(y.mean()),1), round(float(y.std()),1))
                print(f"  {t:5d} sel {m:9.1f} twin {tw:9.1f}  train {tr:9.1f} twin {twt:9.1f}  clipped {clipped:4d}  |gl|/|gt| {sum(ratios)/n:6.2f} cos {sum(coss)/n:6.3f} handed {opt.handed_over_at}")
                ratios, coss, clipped = [], [], 0
    with torch.no_grad():
        print(f"seed {seed} final sel {float(task.error(model(x_te), y_te)):.1f}")
