"""Early-exit network core (alice_dyn.nn): compaction, ZTW ensemble, FLOPs, training, budgets,
model files and per-exit submodels. Trained models are tiny (seconds, one thread)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn

from alice_dyn import nn as ee
from alice_dyn.nn.early_exit import EarlyExitNet, ExitHead
from alice_dyn.nn.inference import select_exits
from alice_dyn.nn.objectives import ClassificationObjective
from alice_dyn.nn.testing import toy_classification, toy_regression

REGISTERED = ee.list_models()


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _random_model(name: str, seed: int = 0) -> EarlyExitNet:
    torch.manual_seed(seed)
    m = ee.create_model(name, d=16, depth=5).eval()
    # random heads are nearly uniform: spread the logits so that exits differ across samples
    with torch.no_grad():
        for h in m.heads:
            for p in h.parameters():
                p.mul_(4.0)
    return m


def _median_thresholds(model, x, policy: ee.ThresholdPolicy) -> ee.ThresholdPolicy:
    """Per-exit thresholds at the median score of each exit: about half leave at each exit."""
    with torch.no_grad():
        outs = model.forward_all(x)
    return policy.with_thresholds(
        [float(policy.score(o, model.objective).median()) for o in outs[:-1]]
    )


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one thread (on a loaded 2-core machine OpenMP spinning makes the many small
    ops of these tests ~100x slower with two)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="module")
def toy_data():
    return {
        "train": toy_classification(3000, seed=1),
        "val": toy_classification(4000, seed=2),
        "test": toy_classification(4000, seed=3),
    }


@pytest.fixture(scope="module")
def trained_sdn(toy_data):
    x, y, _ = toy_data["train"]
    model = ee.create_model("sdn_mlp", d=32, depth=6)
    hist = ee.train_joint(
        model, (x, y), epochs=12, batch_size=128, lr=3e-3, seed=0, threads=1, patience=4
    )
    return model.eval(), hist


# ------------------------------------------------------------------ compaction == reference
def _policies_for(model, x):
    if model.objective.kind == "classification":
        base = [
            _median_thresholds(model, x, ee.ConfidencePolicy(0.0)),
            _median_thresholds(model, x, ee.EntropyPolicy(0.0)),
            ee.PatiencePolicy(patience=1),
            ee.PatiencePolicy(patience=2),
            ee.calibrate_thresholds(model, x, 0.5, "confidence"),
        ]
    else:
        base = [
            _median_thresholds(model, x, ee.UncertaintyPolicy(0.0)),
            ee.PatiencePolicy(patience=1, tol=0.3),
            ee.calibrate_thresholds(model, x, 0.5, "uncertainty"),
        ]
    return base


@pytest.mark.parametrize("name", REGISTERED)
@pytest.mark.parametrize("seed", [0, 1])
def test_compaction_equals_reference_for_every_policy(name, seed):
    model = _random_model(name, seed)
    x = model.example_inputs(300, _gen(seed))
    all_outs = model.forward_all(x)
    exit_flops = torch.tensor(ee.count_flops(model, x).exit_flops, dtype=torch.float64)
    rows_seen = []
    hook = model.blocks[-1].register_forward_hook(lambda m, a, o: rows_seen.append(o.shape[0]))
    try:
        for policy in _policies_for(model, x):
            rows_seen.clear()
            res = ee.run_dynamic(model, x, policy)
            ref_out, ref_idx = select_exits(all_outs, policy, model.objective)
            assert torch.equal(res.exit_index, ref_idx), policy
            torch.testing.assert_close(res.outputs, ref_out, rtol=1e-5, atol=1e-5)
            # outputs are the exit outputs of the chosen exit, FLOPs those of that exit
            torch.testing.assert_close(res.flops, exit_flops[ref_idx])
            # compaction: the last block only saw the samples that reached it
            n_last = int((ref_idx == model.num_exits - 1).sum())
            assert rows_seen == ([n_last] if n_last else []), policy
            counts = res.exit_counts(model.num_exits)
            assert sum(counts) == 300 and max(counts) < 300, (policy, counts)
            # non-compacted mode gives the same
            res2 = ee.run_dynamic(model, x, policy, compact=False)
            assert torch.equal(res2.exit_index, res.exit_index)
    finally:
        hook.remove()


def test_keep_embedding_is_the_embedding_at_each_exit():
    model = _random_model("sdn_mlp", 3)
    x = model.example_inputs(200, _gen(3))
    policy = ee.calibrate_thresholds(model, x, 0.5, "confidence")
    res = ee.run_dynamic(model, x, policy, keep_embedding=True)
    inter = torch.stack(list(model.forward_intermediates(x)))  # (blocks, n, d)
    blocks = torch.tensor(model.exit_after)[res.exit_index]
    expected = inter[blocks, torch.arange(200)]
    torch.testing.assert_close(res.embedding, expected, rtol=1e-5, atol=1e-5)
    assert len(set(res.exit_index.tolist())) > 1  # several exits were exercised
    assert ee.run_dynamic(model, x, policy).embedding is None
    with pytest.raises(ValueError, match="compact"):
        ee.run_dynamic(model, x, policy, compact=False, keep_embedding=True)


def test_module_flops_matches_flop_counter_on_matmuls():
    block = ee.ResidualMLPBlock(16)
    h = torch.randn(7, 16)
    ours = ee.module_flops(block, lambda: block(h), 7)
    # Linear 16->32 and 32->16: 2*16*32*2 matmul + biases 48 + LayerNorm 7*16 + GELU 32 + add 16
    assert ours == pytest.approx(2 * 16 * 32 * 2 + 48 + 7 * 16 + 32 + 16)
    assert ee.flop_counter_total(lambda: block(h)) / 7 == 2 * 16 * 32 * 2


def test_dynamic_mode_and_edge_cases():
    model = _random_model("ztw_mlp")
    x = model.example_inputs(50, _gen())
    # everyone leaves at exit 0 / nobody leaves early
    r0 = model(x, mode="dynamic", policy=ee.ConfidencePolicy(0.0))
    assert r0.exit_index.eq(0).all()
    torch.testing.assert_close(r0.outputs, model(x, mode="one", exit=0))
    r1 = ee.run_dynamic(model, x, ee.ConfidencePolicy(1.1))
    assert r1.exit_index.eq(model.num_exits - 1).all()
    torch.testing.assert_close(r1.outputs, model.forward_all(x)[-1])
    assert r1.flops_fraction > 1.0 > r0.flops_fraction  # heads cost something
    with pytest.raises(ValueError, match="thresholds"):
        ee.run_dynamic(model, x, ee.ConfidencePolicy([0.5, 0.5]))
    # forward_intermediates yields one embedding per block
    hs = list(model.forward_intermediates(x))
    assert len(hs) == model.num_blocks and hs[-1].shape == (50, 16)


def test_policy_json_roundtrip():
    for p in (ee.ConfidencePolicy([0.9, 0.8]), ee.EntropyPolicy(0.3), ee.PatiencePolicy(3)):
        q = ee.policy_from_json(json.loads(json.dumps(p.to_json())))
        assert type(q) is type(p) and q.to_json() == p.to_json()


# ---------------------------------------------------------------------------- ZTW ensemble
def test_ztw_geometric_ensemble_math():
    torch.manual_seed(0)
    n_exits, n_classes = 4, 5
    ens = ee.GeometricEnsemble(n_exits, n_classes)
    logits = [torch.randn(7, n_classes) for _ in range(n_exits)]

    # at initialisation exit i is (almost) head i alone
    def exit_i(i):
        lps = [torch.log_softmax(z, -1) for z in logits[:i]]
        out, lp = ens(i, logits[i], lps)
        torch.testing.assert_close(lp, torch.log_softmax(logits[i], -1))
        return out

    for i in range(n_exits):
        torch.testing.assert_close(exit_i(i).exp(), logits[i].softmax(-1), atol=0.02, rtol=0)
    with torch.no_grad():
        ens.weight_raw.normal_()
        ens.bias.normal_()
    w = ens.weights()
    assert (w >= 0).all() and torch.equal(w, torch.tril(w))
    for i in range(n_exits):
        z = ens.bias[i] + sum(w[i, j] * torch.log_softmax(logits[j], -1) for j in range(i + 1))
        expect = z - torch.logsumexp(z, -1, keepdim=True)
        got = exit_i(i)
        torch.testing.assert_close(got, expect)
        torch.testing.assert_close(got.exp().sum(-1), torch.ones(7))  # renormalised
        lp = torch.stack([torch.log_softmax(z, -1) for z in logits], 1)
        torch.testing.assert_close(ens.forward_log_probs(i, lp), got)
    # weights of later heads (j > i) are never used
    with torch.no_grad():
        before = exit_i(1)
        ens.weight_raw[1, 2:] += 5.0
    torch.testing.assert_close(exit_i(1), before)


def test_cascading_head_gets_detached_normalised_logits():
    model = _random_model("ztw_mlp")
    x = model.example_inputs(8, _gen())
    raws = model.forward_all(x, raw=True)
    model.zero_grad()
    raws[2].sum().backward()
    assert all(p.grad is None or not p.grad.any() for p in model.heads[1].parameters())
    assert any(p.grad is not None and p.grad.any() for p in model.heads[2].parameters())
    # the head sees log_softmax(prev): shifting the previous logits changes nothing
    h = list(model.forward_intermediates(x))[model.exit_after[2]]
    torch.testing.assert_close(model.heads[2](h, raws[1]), model.heads[2](h, raws[1] + 3.0))
    assert model.heads[0].cascading is False and model.heads[-1].cascading is False


# --------------------------------------------------------------------------------- FLOPs
class _SetStem(nn.Module):
    """Set/attention stem: tokens (batch, n, f) with a mask -> attention -> masked mean."""

    def __init__(self, f: int = 6, d: int = 16, heads: int = 2):
        super().__init__()
        self.inp = nn.Linear(f, d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.norm = nn.LayerNorm(d)
        self.f = f

    def forward(self, inputs):
        t = self.inp(inputs["tokens"])
        mask = inputs["mask"]
        a, _ = self.attn(t, t, t, key_padding_mask=~mask, need_weights=False)
        t = self.norm(t + a)
        w = mask.unsqueeze(-1).to(t.dtype)
        return (t * w).sum(1) / w.sum(1).clamp(min=1.0)

    def flops(self, args, output):
        b, n, _ = args[0]["tokens"].shape
        return b * n * output.shape[1] * 3 + b * output.shape[1]

    def example_inputs(self, batch=2, generator=None):
        mask = torch.rand(batch, 7, generator=generator) < 0.7
        mask[:, 0] = True
        return {"tokens": torch.randn(batch, 7, self.f, generator=generator), "mask": mask}


def _set_model() -> EarlyExitNet:
    torch.manual_seed(0)
    return EarlyExitNet(
        _SetStem(),
        [ee.ResidualMLPBlock(16) for _ in range(3)],
        [ExitHead(16, 4) for _ in range(3)],
        exit_after=[0, 1, 2],
        objective=ClassificationObjective(4),
    ).eval()


@pytest.mark.parametrize("name", [*REGISTERED, "set_attention"])
def test_flops_analytic_matches_flop_counter(name):
    model = _set_model() if name == "set_attention" else ee.create_model(name).eval()
    x = model.example_inputs(5, _gen())
    rep = ee.count_flops(model, x)
    assert rep.uncounted == ()
    counted = ee.flop_counter_total(lambda: model.forward_all(x))
    # FlopCounterMode counts matrix products only (2 M N K per mm/addmm/bmm, no bias)
    assert rep.total_matmul * 5 == pytest.approx(counted, rel=0.02)
    assert rep.total > rep.total_matmul  # biases, norms, activations on top
    assert list(rep.exit_flops) == sorted(rep.exit_flops)


def test_flops_by_hand_for_the_mlp():
    f, d, c, depth = 20, 64, 5, 6
    model = ee.create_model("sdn_mlp", in_features=f, num_classes=c, d=d, depth=depth)
    rep = ee.count_flops(model, model.example_inputs(3))
    hid = 2 * d
    stem = 2 * f * d + d
    block = 7 * d + (2 * d * hid + hid) + hid + (2 * hid * d + d) + d  # LN, fc1, GELU, fc2, add
    head = 7 * d + 2 * d * c + c
    assert rep.components["stem"] == stem
    assert rep.components["blocks.0"] == block
    assert rep.components["heads.0"] == head
    assert rep.exit_flops[0] == stem + block + head
    assert rep.exit_flops[-1] == stem + depth * (block + head)
    assert rep.full_flops == stem + depth * block + head


# ------------------------------------------------------------------------------ training
def test_training_reduces_loss_on_separable_toy():
    x, y, _ = toy_classification(400, hard_fraction=0.0, seed=5)
    model = ee.create_model("sdn_mlp", d=16, depth=3)
    hist = ee.train_joint(model, (x, y), epochs=15, batch_size=64, lr=5e-3, seed=0, threads=1)
    assert hist["seconds"] < 10
    assert hist["loss"][-1] < 0.3 * hist["loss"][0]
    xt, yt, _ = toy_classification(1000, hard_fraction=0.0, seed=6)
    assert ee.exit_metrics(model, xt, yt)[-1]["accuracy"] > 0.95


def test_training_from_a_data_loader_with_dict_inputs():
    from torch.utils.data import DataLoader, Dataset

    model = ee.create_model("ztw_groups_mlp", d=16, depth=2)
    data = model.example_inputs(600, _gen(3))
    y = (data["a"][:, 0] > 0).long() + 2 * data["b_mask"].long()  # 4 classes

    class Groups(Dataset):
        def __len__(self):
            return 500

        def __getitem__(self, i):
            return {k: v[i] for k, v in data.items()}, y[i]

    loader = DataLoader(Groups(), batch_size=50, shuffle=False)
    val = ({k: v[500:] for k, v in data.items()}, y[500:])
    hist = ee.train_joint(model, loader, val_data=val, epochs=6, lr=1e-2, threads=1)
    assert hist["epochs"] == 6 and hist["best_val_loss"] < hist["val_loss"][0]
    res = ee.run_dynamic(model, val[0], ee.ConfidencePolicy(0.9))
    assert res.seconds > 0 and (res.predictions == val[1]).double().mean() > 0.6


def test_training_gaussian_heads_and_uncertainty_exit():
    x, y = toy_regression(1500, seed=1)
    model = ee.create_model("gauss_mlp", in_features=8, d=32, depth=4)
    hist = ee.train_joint(model, (x, y), epochs=15, batch_size=128, lr=3e-3, seed=0, threads=1)
    assert hist["val_loss"][hist["best_epoch"]] < hist["val_loss"][0] - 0.3
    xt, yt = toy_regression(2000, seed=2)
    res = ee.run_dynamic(model, xt, ee.calibrate_thresholds(model, x, 0.6, "uncertainty"))
    err = (res.predictions - yt).abs().squeeze(1)
    early = res.exit_index < model.num_exits - 1
    assert 0 < int(early.sum()) < len(yt)
    # samples the heads were sure about are predicted better than the rest
    assert err[early].mean() < err[~early].mean()


def test_training_is_deterministic_for_a_seed():
    x, y, _ = toy_classification(300, seed=7)

    def run(seed):
        torch.manual_seed(123)  # the initial weights
        model = ee.create_model("ztw_mlp", d=16, depth=3)
        hist = ee.train_joint(model, (x, y), epochs=3, batch_size=64, seed=seed, threads=1)
        return model.state_dict(), hist["loss"]

    (s1, l1), (s2, l2), (s3, l3) = run(0), run(0), run(1)
    assert l1 == l2 and l1 != l3
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not all(torch.equal(s1[k], s3[k]) for k in s1)


def test_ztw_staged_recipe_trains_only_its_part(toy_data):
    x, y, _ = toy_data["train"]
    torch.manual_seed(0)
    model = ee.create_model("ztw_mlp", d=32, depth=4)
    kw = dict(batch_size=128, lr=3e-3, seed=0, threads=1)

    def snap(mod):
        return [p.detach().clone() for p in mod.parameters()]

    h1 = ee.train_backbone(model, (x, y), epochs=8, **kw)
    backbone, heads, ens = snap(model.blocks), snap(model.heads[:-1]), snap(model.ensemble)
    assert h1["stage"] == "backbone" and h1["loss"][-1] < h1["loss"][0]
    assert all(torch.equal(a, b) for a, b in zip(heads, snap(model.heads[:-1]), strict=True))

    h2 = ee.train_heads(model, (x, y), epochs=6, distill_temperature=2.0, **kw)
    assert all(torch.equal(a, b) for a, b in zip(backbone, snap(model.blocks), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(heads, snap(model.heads[:-1]), strict=True))
    assert h2["loss"][-1] < h2["loss"][0]
    assert all(p.requires_grad for p in model.parameters())  # unfrozen afterwards

    heads = snap(model.heads)
    h3 = ee.train_ensemble(model, (x, y), epochs=6, batch_size=256, seed=0, threads=1)
    assert all(torch.equal(a, b) for a, b in zip(heads, snap(model.heads), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(ens, snap(model.ensemble), strict=True))
    assert h3["best_val_loss"] <= h3["val_loss"][0]
    acc = [m["accuracy"] for m in ee.exit_metrics(model, *toy_data["test"][:2])]
    assert acc[-1] > acc[0] and acc[-1] > 0.7


# ------------------------------------------------------------------------------- budgets
@pytest.mark.parametrize("target", [0.25, 0.5, 0.75])
def test_budget_calibration_holds_on_held_out_data(trained_sdn, toy_data, target):
    model, _ = trained_sdn
    policy = ee.calibrate_thresholds(model, toy_data["val"][0], target)
    assert policy.calibration["val_fraction"] == pytest.approx(target, rel=0.01)
    res = ee.run_dynamic(model, toy_data["test"][0], policy)
    assert res.flops_fraction == pytest.approx(target, rel=0.05)


def test_budget_calibration_entropy_policy_and_clipping(trained_sdn, toy_data):
    model, _ = trained_sdn
    p = ee.calibrate_thresholds(model, toy_data["val"][0], 0.5, "entropy")
    assert isinstance(p, ee.EntropyPolicy)
    assert ee.run_dynamic(model, toy_data["test"][0], p).flops_fraction == pytest.approx(
        0.5, rel=0.05
    )
    low = ee.calibrate_thresholds(model, toy_data["val"][0], 0.01)
    lo, _hi = low.calibration["reachable"]
    assert low.calibration["val_fraction"] == pytest.approx(lo)


def test_budget_controller_follows_a_load_step(trained_sdn, toy_data):
    model, _ = trained_sdn
    cal = ee.ThresholdCalibrator(model, toy_data["val"][0])
    budget = 0.5 * cal.full_flops
    ctl = ee.BudgetController(cal, budget)
    fixed = ee.calibrate_thresholds(model, toy_data["val"][0], 0.5)
    easy = [toy_classification(512, hard_fraction=0.1, seed=100 + i)[0] for i in range(12)]
    hard = [toy_classification(512, hard_fraction=0.95, seed=200 + i)[0] for i in range(20)]
    measured = [ctl.run(model, x).mean_flops / budget for x in easy + hard]
    fixed_hard = ee.run_dynamic(model, hard[-1], fixed).mean_flops / budget
    assert fixed_hard > 1.1  # the step: harder data costs more at fixed thresholds
    settled_easy, settled_hard = measured[8:12], measured[-8:]
    assert 0.85 < min(settled_easy) and max(settled_easy) < 1.05
    assert 0.85 < min(settled_hard) and max(settled_hard) < 1.05
    assert ctl.history[11]["level"] > ctl.history[-1]["level"]  # lowered after the step
    lo, hi = ctl.bounds
    assert all(lo <= h["fraction"] <= hi for h in ctl.history)


def test_budget_controller_latency_band_and_hysteresis(trained_sdn, toy_data):
    model, _ = trained_sdn
    cal = ee.ThresholdCalibrator(model, toy_data["val"][0])
    ctl = ee.BudgetController(cal, budget=10.0, metric="ms", raise_below=0.85, lower_above=1.0)
    slow = 1.0
    for step in range(60):
        if step == 30:
            slow = 1.6  # e.g. the GPU is shared from now on
        ctl.update(20.0 * slow * cal.fraction(ctl.level))  # latency ~ compute
        if step in (29, 59):
            assert 0.85 * 0.97 <= ctl.average / 10.0 <= 1.0 * 1.03
    changes = sum(h["changed"] for h in ctl.history)
    assert changes < 30  # the band holds the thresholds still most of the time


# -------------------------------------------------------------------------- model files
@pytest.mark.parametrize("name", REGISTERED)
def test_save_load_roundtrip_every_registered_model(name, tmp_path):
    torch.manual_seed(0)
    model = ee.create_model(name).eval()
    x = model.example_inputs(6, _gen(1))
    policy = ee.ConfidencePolicy([0.9] * (model.num_exits - 1))
    prov = ee.provenance(seed=0, command="pytest", dataset_hash=ee.dataset_hash(x), metrics={})
    extra = {
        "thresholds": policy.to_json(),
        "feature_scaling": {"mean": [0.0], "std": [1.0]},
        "provenance": prov,
    }
    ee.save_model(model, tmp_path / name, extra_json=extra)
    assert sorted(p.name for p in (tmp_path / name).iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    loaded, cfg = ee.load_model(tmp_path / name)
    assert cfg["model"]["name"] == name and cfg["provenance"]["dataset_hash"] == ee.dataset_hash(x)
    assert cfg["feature_scaling"] == extra["feature_scaling"]
    assert ee.policy_from_json(cfg["thresholds"]).to_json() == policy.to_json()
    for a, b in zip(model.forward_all(x), loaded.forward_all(x), strict=True):
        assert torch.equal(a, b)


def test_load_model_is_strict_and_checks_the_weights(tmp_path):
    from safetensors.torch import load_file, save_file

    model = ee.create_model("sdn_mlp", d=8, depth=2)
    d = ee.save_model(model, tmp_path / "m")
    state = load_file(str(d / "model.safetensors"))
    state.pop("heads.0.mlp.weight")
    save_file(state, str(d / "model.safetensors"))
    with pytest.raises(ValueError, match="SHA-256"):
        ee.load_model(d)
    with pytest.raises(RuntimeError, match="Missing key"):
        ee.load_model(d, verify=False)
    cfg = json.loads((d / "config.json").read_text())
    cfg["model"].update(name="not_registered", module="os")
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="refusing"):
        ee.load_model(d)


def test_registry_rejects_non_json_hyper_parameters():
    with pytest.raises(TypeError, match="JSON"):
        ee.create_model("sdn_mlp", d=torch.tensor(3))
    with pytest.raises(KeyError, match="registered"):
        ee.create_model("nope")


def test_group_stem_ignores_absent_groups():
    model = ee.create_model("ztw_groups_mlp", d=16, depth=2).eval()
    x = model.example_inputs(10, _gen())
    x["b_mask"][:] = False
    y = dict(x, b=x["b"] + 100.0)
    torch.testing.assert_close(model.forward_all(x)[-1], model.forward_all(y)[-1])


# ------------------------------------------------------------------ per-exit submodels
@pytest.mark.parametrize("name", REGISTERED)
def test_exit_submodel_equals_full_model_head(name):
    model = _random_model(name)
    x = model.example_inputs(9, _gen())
    outs = model.forward_all(x)
    for i in range(model.num_exits):
        sub = model.exit_submodel(i)
        torch.testing.assert_close(sub(x), outs[i], rtol=0, atol=0)
        torch.fx.symbolic_trace(sub)  # no data-dependent control flow
        n_blocks = sum(isinstance(m, ee.ResidualMLPBlock) for m in sub.modules())
        assert n_blocks == model.exit_after[i] + 1


def test_exit_submodel_exports_with_dynamic_batch():
    model = _random_model("ztw_groups_mlp")
    x = model.example_inputs(4, _gen())
    batch = torch.export.Dim("batch", min=1)
    ep = torch.export.export(
        model.exit_submodel(2), (x,), dynamic_shapes={"inputs": {k: {0: batch} for k in x}}
    )
    x9 = model.example_inputs(9, _gen(1))
    torch.testing.assert_close(ep.module()(x9), model.forward_all(x9)[2])


def test_tabulated_calibrator_and_deadline_governor():
    model = _random_model("sdn_mlp", 5)
    x = model.example_inputs(400, _gen(5))
    cal = ee.ThresholdCalibrator(model, x, "confidence")
    tab = ee.TabulatedCalibrator(json.loads(json.dumps(cal.curve())))
    lo, hi = cal.reachable
    for f in np.linspace(lo + 0.01, min(hi, 1.0) - 0.01, 7):
        # never above the request on the calibration data, and close to it
        got = cal.fraction(tab.level_for(f))
        assert got <= f + 1e-9 and got > f - 0.1
    ticks = iter(np.arange(0.0, 100.0, 0.01))  # a fake clock: every call 10 ms later

    gov = ee.DeadlineGovernor(tab)
    res = gov.run(model, x, float("inf"), clock=lambda: next(ticks))
    assert res.exit_index.eq(model.num_exits - 1).all()  # no cost model yet: full network
    assert gov.ms_per_full_sample == pytest.approx(10.0 / (400 * res.flops_fraction))
    full_ms = gov.ms_per_full_sample * 400
    res_half = gov.run(model, x, 0.5 * full_ms, clock=lambda: next(ticks))
    assert gov.fraction == pytest.approx(0.5) and res_half.flops_fraction < 0.6
    res_tight = gov.run(model, x, 0.0, clock=lambda: next(ticks))
    assert gov.fraction == pytest.approx(max(lo, 0.0)) and res_tight.flops_fraction < 0.5
    gov.run(model, x, 1e9, clock=lambda: next(ticks))  # load drops: back to the full network
    assert gov.level == float("inf") and len(gov.history) == 4


def test_nn_imports_flow_one_way():
    """objectives, base -> policies, flops -> inference -> early_exit -> mlp, budget, training:
    no nn module imports one after it in this order (no cycle, no function-level escape)."""
    import ast
    from pathlib import Path

    order = ["objectives", "base", "policies", "flops", "inference", "early_exit", "mlp"]
    root = Path(ee.__file__).parent
    for k, name in enumerate(order):
        tree = ast.parse((root / f"{name}.py").read_text())
        imported = {
            node.module.rsplit(".", 1)[-1]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("alice_dyn.nn.")
        }
        assert not imported & set(order[k:]), (name, imported & set(order[k:]))
        assert all(m in order[:k] or m == "_registry" for m in imported), (name, imported)
