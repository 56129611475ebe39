"""DistributedDataParallel: 2 gloo ranks on CPU step exactly as one process on both shards.

One spawn runs every scenario on 2 ranks (each rank its own half of every batch, float64);
the same scenario functions run here in one process on the concatenated batches. θ, ϕ, the
reported losses and the counters must agree to 1e-10 relative, and be identical across the
ranks. Per-rank BatchNorm and SyncBatchNorm (which torch refuses on CPU) are checked for
what they are.
"""

from __future__ import annotations

import datetime
import os
import warnings
from collections.abc import Callable

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import adaloss

WORLD = 2
SHARD = 4  # rows per rank and batch
# float64. The regression warm start's L-BFGS fit (150 iterations) amplifies reduction-order
# rounding: on 2026-12-05 this machine measured 1.3e-10 relative on the learned loss's value
# (default recipe, regression) at e6a7106 too, where CI had passed; 1e-9 still fails any
# real disagreement between the ranks and the one-process step.
RTOL = 1e-9


class Poisonable(nn.Module):
    """A small MLP whose output turns NaN on rows with x[:, 0] = 1000 (exp overflows)."""

    def __init__(self, outputs: int = 3, batchnorm: bool = False) -> None:
        super().__init__()
        norm = [nn.BatchNorm1d(12)] if batchnorm else []
        self.net = nn.Sequential(nn.Linear(6, 12), *norm, nn.Tanh(), nn.Linear(12, outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) + 0 * torch.exp(x[:, :1])


class Env:
    """How a scenario sees the world: its shard of a global batch, and how to wrap a model."""

    def __init__(self, rank: int = 0, world: int = 1) -> None:
        self.rank, self.world = rank, world

    def shard(self, t: torch.Tensor) -> torch.Tensor:
        return t.chunk(self.world)[self.rank] if self.world > 1 else t

    def wrap(self, model: nn.Module) -> nn.Module:
        return DistributedDataParallel(model) if self.world > 1 else model


def global_batches(steps: int, outputs: int = 3, regression: bool = False, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        x = torch.randn(WORLD * SHARD, 6, generator=g, dtype=torch.float64)
        if regression:  # the ranks' targets lie apart: the warm start must see both
            y = torch.rand(WORLD * SHARD, outputs, generator=g, dtype=torch.float64)
            y[SHARD:] += 5.0
        else:
            y = torch.randint(0, outputs, (WORLD * SHARD,), generator=g)
        out.append((x, y))
    return out


class Run(list):
    """Step results, and ϕ before the first step."""

    def __init__(self, opt) -> None:
        super().__init__()
        self.phi0 = [p.detach().clone() for p in opt.meta_params]


def snapshot(opt, results: Run) -> dict:
    phi = zip(opt.meta_params, results.phi0, strict=True)
    moved = [(a.detach() - b).abs().max() for a, b in phi]
    return {
        "phi_moved": float(max(moved)),
        "theta": [p.detach().clone() for p in opt.model.parameters()],
        "phi": [p.detach().clone() for p in opt.meta_params],
        "learned": [float(r.learned_loss) for r in results],
        "task": [None if r.task_loss is None else float(r.task_loss) for r in results],
        "skipped": [r.skipped for r in results],
        "steps": opt.steps,
        "skipped_steps": opt.skipped_steps,
        "guarded": getattr(opt, "guarded_steps", None),
    }


def train(env: Env, opt, batches, val: bool = True) -> Run:
    results = Run(opt)
    for x, y in batches:
        x, y = env.shard(x), env.shard(y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the rejection's warning
            results.append(opt.step(x, y, x.flip(0), y.flip(0)) if val else opt.step(x, y))
    return results


def make(env: Env, hypergrad="forward", optimizer="adam", outputs=3, **kwargs):
    torch.manual_seed(0)
    model = env.wrap(Poisonable(outputs).double())
    base = {
        "adam": lambda p: torch.optim.Adam(p, lr=1e-2),
        "momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
    }[optimizer](model.parameters())
    task = adaloss.Regression(outputs) if kwargs.pop("regression", False) else None
    kwargs.setdefault("recipe", "paper")
    kwargs.setdefault("meta_lr", 1e-2)
    return adaloss.MetaLossOptimizer(
        model, base, task or adaloss.Classification(outputs), hypergrad=hypergrad, **kwargs
    )


def forward_engine(env):
    opt = make(env, "forward")
    return snapshot(opt, train(env, opt, global_batches(3)))


def unroll_engine(env):
    opt = make(env, "unroll", optimizer="momentum")
    return snapshot(opt, train(env, opt, global_batches(3)))


def meta_every(env):
    opt = make(env, "forward", meta_every=2)
    return snapshot(opt, train(env, opt, global_batches(4), val=False))


def default_recipe_regression(env):
    """initialize() warm-starts from both ranks' targets; a tight guard acts on every step."""
    opt = make(env, "forward", recipe="default", outputs=2, regression=True, guard=0.5)
    batches = global_batches(3, outputs=2, regression=True)
    opt.initialize([(env.shard(x), env.shard(y)) for x, y in batches])
    return snapshot(opt, train(env, opt, batches))


def default_recipe_lazy_unroll(env):
    opt = make(env, "unroll", recipe="default", guard=0.5)
    return snapshot(opt, train(env, opt, global_batches(3)))


def learned_step_length(env):
    """learn_lr: a's gradient is the whole batch's, and the plain steps between run at r×."""
    opt = make(env, "forward", optimizer="momentum", recipe="default", learn_lr=True,
               handover=False, meta_every=2)  # fmt: skip
    return snapshot(opt, train(env, opt, global_batches(4)))


def learned_step_length_horizon(env):
    """lr_horizon: the trace's Hessian-vector product is the whole batch's too."""
    opt = make(env, "forward", optimizer="momentum", recipe="default", learn_lr=True,
               lr_horizon=50, handover=False)  # fmt: skip
    return snapshot(opt, train(env, opt, global_batches(4)))


def keep_fit(env, engine="forward"):
    """keep_fit: the training batch's meta-gradient is the whole batch's too. The validation
    targets are the training ones shifted by a class, so the two meta-gradients conflict
    and the projection acts (with train()'s flipped batch they would be equal)."""
    opt = make(env, engine, optimizer="momentum", keep_fit=True)
    results = Run(opt)
    for x, y in global_batches(4):
        x, y = env.shard(x), env.shard(y)
        results.append(opt.step(x, y, x.flip(0), (y.flip(0) + 1) % 3))
    return snapshot(opt, results)


def keep_fit_unrolled(env):
    return keep_fit(env, "unroll")


def paper_initialize(env, inner_steps=1):
    """Algorithm 1 on each rank's shards: the offline phase's meta-gradients average too."""
    opt = make(env, "forward")
    batches = global_batches(4)
    shards = [(env.shard(x), env.shard(y)) for x, y in batches]
    opt.initialize(shards[:2], shards[2:], steps=3, inner_steps=inner_steps)
    return snapshot(opt, train(env, opt, batches[:1]))


def paper_initialize_unrolled(env):
    return paper_initialize(env, inner_steps=2)


def nan_on_one_rank(env):
    """Rank 0's half of step 2 overflows: the whole step is rejected on every rank."""
    batches = global_batches(3)
    batches[1][0][0, 0] = 1000.0  # in rank 0's shard
    opt = make(env, "forward", guard=0.5)
    return snapshot(opt, train(env, opt, batches))


STOP_STEPS = 30


def patience_stops(env):
    """Validation labels that training contradicts: the meta-objective stops improving and
    every rank stops adapting on the same step (it watches the all-reduced value)."""
    opt = make(env, "forward", recipe="default", patience=2)
    results = Run(opt)
    x, y = (env.shard(t) for t in global_batches(1)[0])
    for _ in range(STOP_STEPS):  # one batch again and again: the validation loss turns up
        results.append(opt.step(x, y, x, (y + 1) % 3))
    return {**snapshot(opt, results), "stopped_at": opt.stopped_at}


def hand_over(env):
    """The twin steps on the whole batch's gradient, a check's errors are the whole check
    batch's, and every rank hands over on the same check."""
    opt = make(env, "forward", optimizer="momentum", recipe="default", handover=2,
               regression=True)  # fmt: skip
    results = Run(opt)
    x, y = (env.shard(t) for t in global_batches(1, regression=True)[0])
    twins, checks = [], []
    for _ in range(STOP_STEPS // 3):  # the twin raises the outputs faster: ahead on y + 1
        results.append(opt.step(x, y, x.flip(0), y.flip(0)))
        if opt.twin is not None:
            twins.append([p.detach().clone() for p in opt.twin.params])
        result = opt.check(x, y + 1)
        checks.append([float(e) for e in (result.model_error, result.twin_error) if e is not None])
    return {**snapshot(opt, results), "twins": twins, "checks": checks,
            "handed_over_at": opt.handed_over_at}  # fmt: skip


def hand_over_every(env):
    """``check_every``: each window sums both models' errors over every rank's validation
    rows, and every rank hands over at the same step."""
    # check_share=False: the windows judge on every validation row, as this test counts them
    opt = make(env, "forward", optimizer="momentum", recipe="default", handover=2,
               check_every=2, check_share=False, regression=True)  # fmt: skip
    results = Run(opt)
    x, y = (env.shard(t) for t in global_batches(1, regression=True)[0])
    windows = []
    for _ in range(STOP_STEPS // 3):
        results.append(opt.step(x, y, x.flip(0), y.flip(0)))
        windows.append(opt.window.state_dict()["batches"])
    return {**snapshot(opt, results), "windows": windows, "handed_over_at": opt.handed_over_at}


def hand_over_share(env):
    """``check_share``: the ranks' meta parts differ in size (on every second step rank 0 has
    none); weighted, the meta-objective is the whole batch's, as one process has it."""
    opt = make(env, "forward", optimizer="momentum", recipe="default", handover=50,
               check_every=3, check_share=0.5, regression=True)  # fmt: skip
    results = Run(opt)
    x, y = global_batches(1, regression=True)[0]
    g = torch.Generator().manual_seed(5)
    pool = torch.randn(64, 6, generator=g, dtype=torch.float64)
    kept = opt.split.check_side(pool)
    rows = torch.cat([pool[kept][: SHARD + 2], pool[~kept][:2]])  # rank 0: only kept rows
    val = [(x.flip(0), y.flip(0)), (rows, torch.rand(len(rows), 3, generator=g).double() + 2)]
    examples = []
    for t in range(6):
        xv, yv = val[t % 2]
        results.append(opt.step(env.shard(x), env.shard(y), env.shard(xv), env.shard(yv)))
        examples.append(opt.window.examples)
    meta = [r.meta_updated for r in results]
    return {**snapshot(opt, results), "examples": examples, "meta": meta}


def meta_lr(env):
    torch.manual_seed(0)
    model = env.wrap(Poisonable().double())
    base = torch.optim.SGD(model.parameters(), lr=0.1)
    opt = adaloss.MetaLROptimizer(model, base, adaloss.Classification(3), meta_lr=1e-2)
    return snapshot(opt, train(env, opt, global_batches(3)))


def checkpoint(env, directory=None):
    """3 steps, rank 0 saves, a 4th step; the test resumes the checkpoint in one process."""
    opt = make(env, "forward", guard=0.5)
    batches = global_batches(4)
    train(env, opt, batches[:3])
    if env.rank == 0 and directory is not None:
        torch.save(
            {"model": opt.model.state_dict(), "opt": opt.state_dict()},
            os.path.join(directory, "checkpoint.pt"),
        )
    return snapshot(opt, train(env, opt, batches[3:]))


SCENARIOS: dict[str, Callable] = {
    f.__name__: f
    for f in (
        forward_engine,
        unroll_engine,
        meta_every,
        default_recipe_regression,
        default_recipe_lazy_unroll,
        learned_step_length,
        learned_step_length_horizon,
        keep_fit,
        keep_fit_unrolled,
        patience_stops,
        hand_over,
        hand_over_every,
        hand_over_share,
        paper_initialize,
        paper_initialize_unrolled,
        nan_on_one_rank,
        meta_lr,
    )
}


def checks_that_raise(env) -> dict:
    """What each rank saw: errors, warnings, BatchNorm buffers."""
    seen = {}
    # A bad batch on rank 0 only: both ranks raise, neither steps, nobody hangs.
    opt = make(env)
    x, y = (env.shard(t) for t in global_batches(1)[0])
    if env.rank == 0:
        x = x.clone()
        x[0, 0] = float("nan")
    try:
        opt.step(x, y)
    except ValueError as err:
        seen["bad_batch"] = (str(err), opt.steps)
    # A plain model while a 2-rank group exists: a warning.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plain = Poisonable().double()
        adaloss.MetaLossOptimizer(
            plain, torch.optim.SGD(plain.parameters(), lr=0.1), adaloss.Classification(3)
        )
    seen["warnings"] = [str(w.message) for w in caught if "DistributedDataParallel" in str(w)]
    # Per-rank BatchNorm: θ and ϕ stay identical; running statistics are rank 0's at each
    # step's start (DDP's broadcast_buffers) and then move with the rank's own batch.
    torch.manual_seed(0)
    model = DistributedDataParallel(Poisonable(batchnorm=True).double())
    opt = adaloss.MetaLossOptimizer(
        model, torch.optim.SGD(model.parameters(), lr=0.1), adaloss.Classification(3)
    )
    train(env, opt, global_batches(2))
    bn = model.module.net[1]
    seen["bn"] = snapshot(opt, Run(opt)) | {"running_mean": bn.running_mean.clone()}
    # SyncBatchNorm converts, but on CPU torch's DDP refuses to wrap it (GPU modules only).
    sync = nn.SyncBatchNorm.convert_sync_batchnorm(Poisonable(batchnorm=True).double())
    try:
        DistributedDataParallel(sync)
        seen["sync_bn"] = (type(sync.net[1]).__name__, "wrapped")
    except ValueError as err:
        seen["sync_bn"] = (type(sync.net[1]).__name__, str(err))
    return seen


def _worker(rank: int, directory: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"file://{os.path.join(directory, 'rendezvous')}",
        rank=rank,
        world_size=WORLD,
        timeout=datetime.timedelta(seconds=60),  # a mismatched collective fails, never hangs
    )
    try:
        env = Env(rank, WORLD)
        results = {name: scenario(env) for name, scenario in SCENARIOS.items()}
        results["checkpoint"] = checkpoint(env, directory)
        results["raising"] = checks_that_raise(env)
        torch.save(results, os.path.join(directory, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("ddp"))
    mp.spawn(_worker, args=(directory,), nprocs=WORLD, join=True)
    return [torch.load(os.path.join(directory, f"rank{r}.pt")) for r in range(WORLD)], directory


def assert_close(got: dict, want: dict) -> None:
    for key in ("theta", "phi"):
        a = torch.cat([t.reshape(-1) for t in got[key]])
        b = torch.cat([t.reshape(-1) for t in want[key]])
        assert (a - b).abs().max() <= RTOL * b.abs().max(), key
    for key in ("learned", "task"):
        for a, b in zip(got[key], want[key], strict=True):
            if b is None or b != b:  # no meta step, or a rejected step (NaN)
                assert a is None or a != a, key
            else:
                assert abs(a - b) <= RTOL * abs(b), key
    for key in ("skipped", "steps", "skipped_steps", "guarded"):
        assert got[key] == want[key], key


def assert_rank_identical(per_rank: list[dict]) -> None:
    for key in ("theta", "phi"):
        for a, b in zip(per_rank[0][key], per_rank[1][key], strict=True):
            assert torch.equal(a, b), key


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_two_ranks_step_as_one_process_on_both_shards(ranks, name):
    results, _ = ranks
    per_rank = [r[name] for r in results]
    assert_rank_identical(per_rank)
    reference = SCENARIOS[name](Env())
    for got in per_rank:
        assert_close(got, reference)
    assert reference["steps"] > 0
    if name == "nan_on_one_rank":
        assert reference["skipped"] == [False, True, False]
    if name == "patience_stops":
        stopped = reference["stopped_at"]
        assert stopped is not None and stopped < STOP_STEPS - 1
        assert all(r["stopped_at"] == stopped for r in per_rank)
        assert reference["task"][stopped + 1 :] == [None] * (STOP_STEPS - 1 - stopped)
    if name == "hand_over":
        assert reference["handed_over_at"] is not None and reference["twins"]
        assert all(r["handed_over_at"] == reference["handed_over_at"] for r in per_rank)
        for got in per_rank:
            for mine, theirs in zip(got["checks"], reference["checks"], strict=True):
                assert mine == pytest.approx(theirs, rel=RTOL)
            for mine, theirs in zip(got["twins"], reference["twins"], strict=True):
                for a, b in zip(mine, theirs, strict=True):
                    torch.testing.assert_close(a, b, rtol=RTOL, atol=RTOL)
    if name == "hand_over_every":
        assert reference["handed_over_at"] == 4  # two windows of two steps, the twin ahead
        assert all(r["handed_over_at"] == 4 for r in per_rank)
    if name == "hand_over_share":
        assert reference["meta"] == [True] * 6  # rank 0's empty part joined at weight 0
        assert all(r["meta"] == reference["meta"] for r in per_rank)
        # the window's kept rows: x.flip(0) has 4, the crafted batch 6; a window is 3 steps
        assert reference["examples"] == [4, 10, 0, 6, 10, 0]
        per_step = zip(*(r["examples"] for r in per_rank), strict=True)
        assert [sum(e) for e in per_step] == [4, 10, 0, 6, 10, 0]
    if name.startswith("default_recipe") or name == "nan_on_one_rank":
        assert reference["guarded"] == reference["steps"]  # the guard acted on every step
    assert reference["phi_moved"] > 0


def test_checkpoint_from_rank_0_resumes_in_one_process(ranks):
    results, directory = ranks
    saved = torch.load(os.path.join(directory, "checkpoint.pt"))
    opt = make(Env(), "forward", guard=0.5)
    opt.model.load_state_dict(saved["model"])
    opt.load_state_dict(saved["opt"])
    resumed = snapshot(opt, train(Env(), opt, global_batches(4)[3:]))
    assert_rank_identical([r["checkpoint"] for r in results])
    for got in (r["checkpoint"] for r in results):
        assert_close(got, resumed)


def test_a_bad_batch_on_one_rank_raises_on_every_rank(ranks):
    results, _ = ranks
    (own, steps0), (other, steps1) = (r["raising"]["bad_batch"] for r in results)
    assert "x must be finite" in own
    assert "another rank rejected its batch" in other
    assert steps0 == steps1 == 0


def test_a_plain_model_in_a_process_group_warns(ranks):
    results, _ = ranks
    for r in results:
        assert len(r["raising"]["warnings"]) == 1
        assert "not wrapped in DistributedDataParallel" in r["raising"]["warnings"][0]


def test_batchnorm_keeps_per_rank_statistics_and_shared_weights(ranks):
    results, _ = ranks
    bn = [r["raising"]["bn"] for r in results]
    assert_rank_identical(bn)
    # Each rank normalized and tracked its own half: the statistics differ (as under DDP).
    assert not torch.equal(bn[0]["running_mean"], bn[1]["running_mean"])


def test_sync_batchnorm_converts_but_ddp_refuses_it_on_cpu(ranks):
    results, _ = ranks
    for r in results:
        kind, message = r["raising"]["sync_bn"]
        assert kind == "SyncBatchNorm"
        assert "SyncBatchNorm layers only work with GPU modules" in message
