"""Mixup, Manifold Mixup and ICT against hand-computed values."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rimrl.regularize import (EMATeacher, ManifoldMixup, MixPlan, ict_consistency, mix,
                              mixed_cross_entropy, mixed_targets, plan_mix, sigmoid_rampup)
from rimrl.tasks.supervised import expected_calibration_error, spectrum_measures


def test_plan_lambda_and_pairing():
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a, b = plan_mix(8, 0.4, g1), plan_mix(8, 0.4, g2)
    assert a.lam == b.lam and torch.equal(a.perm, b.perm)
    assert 0.0 < a.lam < 1.0
    assert sorted(a.perm.tolist()) == list(range(8))
    lams = [plan_mix(4, 0.1, g1).lam for _ in range(300)]
    assert sum(l < 0.1 or l > 0.9 for l in lams) > 200  # Beta(0.1, 0.1) piles up at 0 and 1
    with pytest.raises(ValueError, match="alpha must be positive"):
        plan_mix(4, 0.0)


def test_mix_and_targets_hand_values():
    plan = MixPlan(0.3, torch.tensor([1, 0]))
    x = torch.tensor([[0.0], [10.0]])
    assert mix(x, plan).tolist() == [[7.0], [3.0]]
    t = mixed_targets(torch.tensor([0, 2]), 3, plan)
    assert torch.allclose(t, torch.tensor([[0.3, 0.0, 0.7], [0.7, 0.0, 0.3]]))
    assert torch.allclose(t.sum(1), torch.ones(2))


def test_mixed_cross_entropy_is_weighted_sum():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 1.0]])
    y = torch.tensor([0, 2])
    plan = MixPlan(0.25, torch.tensor([1, 0]))
    expected = 0.25 * F.cross_entropy(logits, y) + 0.75 * F.cross_entropy(logits, y[plan.perm])
    assert torch.allclose(mixed_cross_entropy(logits, y, plan), expected)


def net():
    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module("h1", nn.Sequential(nn.Linear(3, 5), nn.ReLU()))
    model.add_module("h2", nn.Sequential(nn.Linear(5, 4), nn.ReLU()))
    model.add_module("out", nn.Linear(4, 2))
    return model


def test_layer_zero_is_input_mixup():
    model = net()
    x, y = torch.randn(6, 3), torch.tensor([0, 1, 0, 1, 1, 0])
    mm = ManifoldMixup(model, ["h1", "h2"], alpha=1.0, generator=torch.Generator().manual_seed(1))
    logits, targets = mm(x, y, 2, layer=0)
    plan = mm.last_plan
    assert torch.allclose(logits, model(mix(x, plan)))
    assert torch.allclose(targets, mixed_targets(y, 2, plan))


def test_mixing_at_a_hidden_layer_and_gradient_before_it():
    model = net()
    x, y = torch.randn(6, 3), torch.tensor([0, 1, 0, 1, 1, 0])
    mm = ManifoldMixup(model, ["h1", "h2"], alpha=1.0, generator=torch.Generator().manual_seed(2))
    logits, targets = mm(x, y, 2, layer=2)  # eligible: [input, h1, h2] -> index 2 is h2
    plan = mm.last_plan
    manual = model.out(mix(model.h2(model.h1(x)), plan))
    assert torch.allclose(logits, manual)
    (-(targets * F.log_softmax(logits, -1)).sum(1).mean()).backward()
    assert model.h1[0].weight.grad.abs().sum() > 0  # layers before the mixing point learn
    # the hook is gone afterwards: a plain forward is unmixed
    assert torch.allclose(model(x), model.out(model.h2(model.h1(x))))


def test_manifold_mixup_draws_only_from_its_generator():
    """Layer, lambda and pairing come from the mixer's generator: the global one can do
    anything in between and the same seed still gives the same mixed batch."""
    x, y = torch.randn(6, 3), torch.tensor([0, 1, 0, 1, 1, 0])
    results = []
    for global_seed in (0, 99):
        torch.manual_seed(global_seed)
        mm = ManifoldMixup(net(), ["h1", "h2"], generator=torch.Generator().manual_seed(4))
        torch.manual_seed(global_seed + 1)
        results.append([(mm(x, y, 2)[1], mm.last_layer, mm.last_plan.lam) for _ in range(3)])
    for (t1, l1, lam1), (t2, l2, lam2) in zip(*results):
        assert l1 == l2 and lam1 == lam2 and torch.equal(t1, t2)


def test_layer_is_drawn_uniformly():
    mm = ManifoldMixup(net(), ["h1", "h2"], generator=torch.Generator().manual_seed(0))
    seen = []
    for _ in range(300):
        mm(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]), 2)
        seen.append(mm.last_layer)
    counts = [seen.count(k) for k in range(3)]
    assert all(70 < c < 130 for c in counts), counts


def test_unknown_layer_name():
    with pytest.raises(ValueError, match="no layer named"):
        ManifoldMixup(net(), ["h9"])


def test_ema_update_arithmetic_and_no_teacher_gradient():
    student = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        student.weight.fill_(1.0)
    teacher = EMATeacher(student, decay=0.9, warmup=False)
    with torch.no_grad():
        student.weight.fill_(3.0)
    teacher.update(student)
    assert teacher.model.weight.item() == pytest.approx(0.9 * 1.0 + 0.1 * 3.0)
    teacher.update(student)
    assert teacher.model.weight.item() == pytest.approx(0.9 * 1.2 + 0.1 * 3.0)
    model = net()
    t = EMATeacher(model)
    loss = ict_consistency(model, t, torch.randn(8, 3), alpha=1.0)
    loss.backward()
    assert all(p.grad is None for p in t.model.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_ema_warmup_starts_as_the_running_mean_of_the_student():
    """Official mean-teacher/ICT warm-up: update t uses min(1 - 1/(t + 1), decay)."""
    student = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        student.weight.fill_(0.0)
    teacher = EMATeacher(student, decay=0.6)
    assert teacher.current_decay() == pytest.approx(0.5)
    expected = 0.0
    for t, value in enumerate([4.0, 1.0, 7.0, 2.0], start=1):
        with torch.no_grad():
            student.weight.fill_(value)
        decay = min(1 - 1 / (t + 1), 0.6)  # 0.5, 0.6 (not 2/3), 0.6, 0.6
        expected = decay * expected + (1 - decay) * value
        teacher.update(student)
        assert teacher.model.weight.item() == pytest.approx(expected)
    # by hand: 2.0, then 0.6*2.0+0.4*1.0 = 1.6, 0.6*1.6+0.4*7.0 = 3.76, 0.6*3.76+0.4*2.0 = 3.056
    assert teacher.model.weight.item() == pytest.approx(3.056)


@pytest.mark.parametrize("warmup", [True, False])
def test_ict_training_passes_the_warmup_switch_to_its_teacher(monkeypatch, warmup):
    import rimrl.tasks.supervised as supervised
    from rimrl.tasks.supervised import SupervisedConfig
    from rimrl.config import from_dict

    made = []

    class Recording(EMATeacher):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(supervised, "EMATeacher", Recording)
    cfg = from_dict(SupervisedConfig, {"method": {"name": "ict", "ema_warmup": warmup},
                                       "train": {"updates": 3, "eval_every": 3},
                                       "data": {"n_train": 64, "n_test": 32}})
    supervised.train_supervised(cfg)
    assert len(made) == 1 and made[0].warmup is warmup and made[0].updates == 3
    assert SupervisedConfig().method.ema_warmup and SupervisedConfig().method.supervised_mixup


def test_mean_teacher_consistency_hand_computed():
    """No noise: mse between the student's and the teacher's class probabilities on u."""
    from rimrl.regularize import mean_teacher_consistency

    student = nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        student.weight.copy_(torch.tensor([[1.0], [-1.0]]))
    teacher = EMATeacher(student)
    with torch.no_grad():
        teacher.model.weight.zero_()  # teacher predicts [0.5, 0.5] everywhere
    u = torch.tensor([[0.0], [1.0]])
    p1 = 1 / (1 + math.exp(-2.0))  # softmax([1, -1])[0]
    # u=0: student [0.5, 0.5], no loss; u=1: (p1 - 0.5)^2 + (1 - p1 - 0.5)^2
    expected = (0.0 + 2 * (p1 - 0.5) ** 2) / 2
    loss = mean_teacher_consistency(student, teacher, u, noise_std=0.0)
    assert loss.item() == pytest.approx(expected)
    noisy = mean_teacher_consistency(student, teacher, u, noise_std=1.0,
                                     generator=torch.Generator().manual_seed(0))
    assert noisy.item() != pytest.approx(expected)  # the noise switch acts


def test_mean_teacher_noise_comes_from_its_generator_in_order():
    """Teacher input u + std * n1, then student input u + std * n2, n1 and n2 the next draws
    of the given generator (whatever the global generator does); the chosen loss is used."""
    from rimrl.regularize import mean_teacher_consistency

    seen = []

    class Recorder(nn.Module):
        def __init__(self, logits):
            super().__init__()
            self.logits = torch.tensor(logits)

        def forward(self, x):
            seen.append(x.clone())
            return self.logits.expand(x.shape[0], 2)

    student = Recorder([0.0, 0.0])
    teacher = EMATeacher(nn.Linear(3, 2))
    teacher.model = Recorder([1.0, 0.0])
    u = torch.arange(6.0).reshape(2, 3)
    draws = torch.Generator().manual_seed(5)
    n1, n2 = torch.randn(2, 3, generator=draws), torch.randn(2, 3, generator=draws)
    torch.manual_seed(123)  # the global generator must not matter
    loss = mean_teacher_consistency(student, teacher, u, noise_std=0.5,
                                    generator=torch.Generator().manual_seed(5), loss="kl")
    assert torch.allclose(seen[0], u + 0.5 * n1) and torch.allclose(seen[1], u + 0.5 * n2)
    t = 1 / (1 + math.exp(-1.0))  # the teacher's softmax([1, 0])[0]; the student's is 0.5
    kl = t * math.log(t / 0.5) + (1 - t) * math.log((1 - t) / 0.5)
    assert loss.item() == pytest.approx(kl)  # not the mse, 2 (t - 0.5)^2
    with pytest.raises(ValueError, match="unknown consistency loss"):
        mean_teacher_consistency(student, teacher, u, 0.5, loss="l1")


@pytest.mark.parametrize("method,consistency", [("ict", "ict_consistency"),
                                                ("mean-teacher", "mean_teacher_consistency")])
def test_each_teacher_method_trains_with_its_own_consistency(monkeypatch, method, consistency):
    import rimrl.tasks.supervised as supervised
    from rimrl.config import from_dict
    from rimrl.tasks.supervised import SupervisedConfig

    calls = []
    for name in ("ict_consistency", "mean_teacher_consistency"):
        real = getattr(supervised, name)
        monkeypatch.setattr(supervised, name, lambda *a, _r=real, _n=name, **k:
                            calls.append(_n) or _r(*a, **k))
    cfg = from_dict(SupervisedConfig, {"method": {"name": method},
                                       "train": {"updates": 2, "eval_every": 2},
                                       "data": {"n_train": 64, "n_test": 32}})
    out = supervised.train_supervised(cfg)
    assert calls == [consistency] * 2 and "test_teacher" in out["result"]


def test_consistency_target_is_mixed_teacher_prediction():
    model = net()
    teacher = EMATeacher(model)
    u = torch.randn(5, 3)
    g = torch.Generator().manual_seed(3)
    loss = ict_consistency(model, teacher, u, 1.0, g)
    plan = plan_mix(5, 1.0, torch.Generator().manual_seed(3))
    p = F.softmax(teacher.model(u), -1)
    target = plan.lam * p + (1 - plan.lam) * p[plan.perm]
    student = F.softmax(model(mix(u, plan)), -1)
    assert torch.allclose(loss, ((student - target) ** 2).sum(1).mean())


def test_rampup_values():
    assert sigmoid_rampup(0, 100) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup(50, 100) == pytest.approx(math.exp(-1.25))
    assert sigmoid_rampup(100, 100) == 1.0 and sigmoid_rampup(500, 100) == 1.0


def test_ece_and_singular_spread_hand_values():
    probs = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    y = torch.tensor([0, 1, 0, 0])
    # bin 0.9: accuracy 0.5 vs confidence 0.9; bin 0.6: accuracy 1.0 vs 0.6 -> 0.5*0.4 + 0.5*0.4
    assert expected_calibration_error(probs, y) == pytest.approx(0.4)
    rank_one = torch.tensor([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]])
    labels = torch.zeros(3, dtype=torch.long)
    m = spectrum_measures(rank_one, labels)
    assert m["raw"] == pytest.approx(0.0, abs=1e-9) and m["k90"] == 1.0
    # centred: rows -1, 0, 1 times (1, 2): still rank one
    assert m["relative_centred"] == pytest.approx(0.0, abs=1e-9) and m["k90_centred"] == 1.0
    # diag(3, 1): s = 3, 1; energy 9/10 = 0.9 -> one value holds 90%
    m = spectrum_measures(torch.tensor([[3.0, 0.0], [0.0, 1.0]]), torch.zeros(2).long())
    assert m["raw"] == pytest.approx(1.0) and m["relative"] == pytest.approx(1 / 3)
    assert m["k90"] == 1.0
    # scale-free measures do not move when the activations are scaled; the raw one does
    x, labels = torch.randn(20, 5), torch.arange(20) % 2
    small, big = spectrum_measures(x, labels), spectrum_measures(10 * x, labels)
    assert big["raw"] == pytest.approx(10 * small["raw"])
    for key in ("relative", "k90", "relative_centred", "k90_centred"):
        assert big[key] == pytest.approx(small[key])
    # two classes: the average over classes; class 1 is rank one, class 0 diag(2, 1)
    two = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 2.0]])
    m = spectrum_measures(two, torch.tensor([0, 0, 1, 1]))
    assert m["raw"] == pytest.approx((1.0 + 0.0) / 2, abs=1e-9)
    # class 0: s = 2, 1, energy 4/5 < 0.9 -> 2 values; class 1: 1 value
    assert m["k90"] == pytest.approx(1.5)


@pytest.mark.parametrize("method,supervised_mixup", [
    ("erm", False), ("mixup", False), ("manifold-mixup", False), ("ict", True), ("ict", False)])
def test_training_loss_of_each_method_hand_computed(monkeypatch, method, supervised_mixup):
    """The labelled loss ``rimrl train supervised`` optimises, per method, on a mock model
    (logits [x, -x]) and a fixed mixing plan (lam 0.3, pairs swapped): the mixing branches
    give the mixed cross entropy, ERM (and ICT without supervised mixup) the plain one."""
    import rimrl.regularize.manifold as manifold_module
    import rimrl.tasks.supervised as supervised
    from rimrl.tasks.supervised import MethodConfig, SupervisedConfig, batch_loss

    plan = MixPlan(0.3, torch.tensor([1, 0]))
    monkeypatch.setattr(supervised, "plan_mix", lambda *a, **k: plan)
    monkeypatch.setattr(manifold_module, "plan_mix", lambda *a, **k: plan)
    model = nn.Linear(1, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0], [-1.0]]))
        model.bias.zero_()
    x, y = torch.tensor([[0.0], [2.0]]), torch.tensor([0, 1])
    cfg = SupervisedConfig(method=MethodConfig(name=method, supervised_mixup=supervised_mixup))
    mixer = ManifoldMixup(model, [], alpha=1.0, include_input=True)

    def ce(a, label):  # cross entropy of logits [a, -a]
        return math.log1p(math.exp(-2 * a)) if label == 0 else math.log1p(math.exp(2 * a))

    if method in ("mixup", "manifold-mixup") or supervised_mixup:
        # mixed inputs 0.3 x + 0.7 x[perm] = [1.4, 0.6]; targets 0.3 y + 0.7 y[perm]
        expected = (0.3 * ce(1.4, 0) + 0.7 * ce(1.4, 1) + 0.3 * ce(0.6, 1) + 0.7 * ce(0.6, 0)) / 2
    else:
        expected = (ce(0.0, 0) + ce(2.0, 1)) / 2
    loss = batch_loss(cfg, model, x, y, 2, mixer, torch.Generator().manual_seed(0))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_plan_mix_lambda_is_a_beta_draw_from_two_gammas_of_the_generator():
    """lam = g1 / (g1 + g2) with g1, g2 ~ Gamma(alpha) drawn in that order from the generator
    (so lam ~ Beta(alpha, alpha)), then the pairing."""
    plan = plan_mix(5, 2.0, torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)
    g1 = torch._standard_gamma(torch.full((1,), 2.0), generator=gen)
    g2 = torch._standard_gamma(torch.full((1,), 2.0), generator=gen)
    assert 0.0 < plan.lam < 1.0 and plan.lam == pytest.approx(float(g1 / (g1 + g2)))
    assert torch.equal(plan.perm, torch.randperm(5, generator=gen))
    with pytest.raises(ValueError, match="mixup alpha must be positive, got 0"):
        plan_mix(5, 0, None)


def test_mixed_targets_have_every_class_even_when_the_batch_lacks_some():
    targets = mixed_targets(torch.tensor([0, 1]), 4, MixPlan(0.25, torch.tensor([1, 0])))
    assert torch.equal(targets, torch.tensor([[0.25, 0.75, 0, 0], [0.75, 0.25, 0, 0]]))


def test_ict_consistency_uses_the_loss_it_is_given():
    """kl: KL(teacher's mixed prediction || student at the mixed input), batch mean."""
    torch.manual_seed(0)
    student, teacher_net = nn.Linear(3, 4), nn.Linear(3, 4)
    teacher = EMATeacher(teacher_net)
    u = torch.randn(6, 3)
    got = ict_consistency(student, teacher, u, 1.0, torch.Generator().manual_seed(1), loss="kl")
    plan = plan_mix(6, 1.0, torch.Generator().manual_seed(1))
    target = mix(teacher.predict(u), plan)
    expected = (target * (target.log() - F.log_softmax(student(mix(u, plan)), -1))).sum(-1).mean()
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)


def test_ema_teacher_decay_range_and_frozen_copy():
    student = nn.Linear(2, 2)
    teacher = EMATeacher(student, decay=0.0)  # allowed: the teacher copies the student
    assert not any(p.requires_grad for p in teacher.model.parameters())
    for bad in (1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=rf"EMA decay must be in \[0, 1\), got {bad}"):
            EMATeacher(student, decay=bad)


def test_sigmoid_rampup_values():
    """exp(-5 (1 - t/L)^2), clipped to [0, L]; L <= 0 means no ramp-up."""
    assert sigmoid_rampup(0, 1) == pytest.approx(math.exp(-5.0))
    assert sigmoid_rampup(0.5, 1) == pytest.approx(math.exp(-1.25))
    assert sigmoid_rampup(3, 1) == 1.0 and sigmoid_rampup(0, 0) == 1.0


def test_manifold_mixup_needs_a_layer_or_the_input():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    ManifoldMixup(model, ["0"], include_input=False)  # hidden layers only: fine
    with pytest.raises(ValueError, match="no eligible layer: give layers or include_input=True"):
        ManifoldMixup(model, [], include_input=False)
    with pytest.raises(ValueError, match="mixup alpha must be positive, got 0"):
        ManifoldMixup(model, ["0"], alpha=0)
