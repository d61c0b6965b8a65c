"""NFM (thesis ch. 10): residual at gamma = 0, top-k sparsity, the null entry, rescaling,
the second pass reading first-pass layers, and the ResNet encoders around it."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from rimrl.nn.encoders import ENCODERS, encoder_class
from rimrl.nn.nfm import NFMAttention, NFMStack, rescale


def _stack(passes=2, top_k=4, gamma=None):
    torch.manual_seed(0)
    blocks = [nn.Conv2d(3, 8, 3, 2, 1), nn.Sequential(nn.ReLU(), nn.Conv2d(8, 8, 3, 2, 1)),
              nn.Sequential(nn.ReLU(), nn.Conv2d(8, 4, 3, 1, 1))]
    stack = NFMStack(blocks, [8, 8, 4], passes=passes, key_size=8, value_size=8, heads=2,
                     top_k=top_k)
    if gamma is not None:
        for site in stack.sites.values():
            site.gamma.data.fill_(gamma)
    return stack, nn.Sequential(*blocks)


def test_gamma_zero_is_exactly_the_plain_stack():
    stack, plain = _stack(passes=2)
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(stack(x), plain(x))


@pytest.mark.parametrize("top_k", [1, 2, 4])
def test_top_k_leaves_exactly_k_nonzero_weights(top_k):
    stack, _ = _stack(passes=2, top_k=top_k, gamma=1.0)
    stack(torch.randn(2, 3, 16, 16))
    for site in stack.sites.values():
        w = site.last_weights  # (B, 1 + E, heads, H, W)
        assert w.shape[1] > top_k
        assert torch.all((w > 0).sum(1) == top_k)
        assert torch.allclose(w.sum(1), torch.ones_like(w.sum(1)))


def test_null_entry_can_take_all_the_weight():
    site = NFMAttention(4, key_size=4, value_size=4, heads=1, top_k=1)
    site.gamma.data.fill_(1.0)
    with torch.no_grad():
        site.query.weight.zero_()
        site.query.bias.fill_(1.0)  # q = (1, 1, 1, 1) everywhere
    h = torch.rand(1, 4, 3, 3) + 0.1
    memory = torch.cat([-h, torch.randn(1, 4, 3, 3)], 1)  # keys -h: every score below 0
    out = site(h, [memory])
    assert torch.all(site.last_weights[:, 0] == 1)  # all on the null row
    # reading the zero value, the MLP adds only its bias path: the same at every position
    mlp_of_zero = site.out(torch.zeros(1, 4, 1, 1))
    assert torch.allclose(out - h, mlp_of_zero.expand_as(h), atol=1e-6)


@pytest.mark.parametrize("source,target,elements", [
    ((4, 4), (8, 8), 1),     # smaller: nearest upsampling
    ((8, 8), (8, 8), 1),     # equal: as is
    ((8, 8), (4, 4), 4),     # larger: space-to-depth, 2x2 fine positions per coarse one
    ((21, 21), (11, 11), 4),  # not divisible: zero-padded to 22x22
    ((42, 42), (11, 11), 16),
    ((8, 4), (4, 8), 4),      # finer in height only: still space-to-depth (width padded)
    ((4, 8), (4, 16), 1),     # as fine in height, coarser in width: upsampled
    ((4, 8), (8, 8), 1),      # coarser in height, as fine in width: upsampled
])
def test_rescale_shapes(source, target, elements):
    x = torch.randn(2, 3, *source)
    out = rescale(x, target)
    assert out.shape == (2, elements, 3, *target)
    if source[0] <= target[0] and source[1] <= target[1]:  # nearest upsampling, exactly
        rows = torch.arange(target[0]) * source[0] // target[0]
        cols = torch.arange(target[1]) * source[1] // target[1]
        assert torch.equal(out[:, 0], x[:, :, rows][:, :, :, cols])


def test_space_to_depth_keeps_each_fine_position():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    out = rescale(x, (2, 2))  # (1, 4, 1, 2, 2)
    # the coarse position (0, 0) sees the four fine values of its 2x2 window
    assert sorted(out[0, :, 0, 0, 0].tolist()) == [0.0, 1.0, 4.0, 5.0]
    assert sorted(out[0, :, 0, 1, 1].tolist()) == [10.0, 11.0, 14.0, 15.0]


def test_second_pass_attends_over_first_pass_layers():
    stack, _ = _stack(passes=2, top_k=100, gamma=1.0)
    seen = []
    for site in stack.sites.values():
        def attend(h, elements, _inner=site.attend):
            seen.append(len(elements))
            return _inner(h, elements)
        site.attend = attend
    stack(torch.randn(1, 3, 16, 16))
    # pass 1: layers 0..i of this pass; pass 2: all 3 of pass 1 plus 0..i of pass 2
    assert seen == [1, 2, 3, 4, 5, 6]
    # top-down: the output (end of pass 2) depends on the deepest block output of pass 1,
    # which only the attention memory carries into pass 2
    outputs = []
    stack.blocks[2].register_forward_hook(lambda m, a, out: outputs.append(out))
    final = stack(torch.randn(1, 3, 16, 16))
    grad = torch.autograd.grad(final.sum(), outputs[0])[0]  # outputs[0]: pass 1
    assert grad.abs().sum() > 0


def test_skipping_a_site_equals_that_site_reading_nothing():
    # sites=[1, 2]: block 0 still enters the memory, only its own read is skipped; the same
    # as the full stack with site 0's gamma at 0 (its read then adds nothing)
    full, _ = _stack(passes=2, gamma=0.7)
    full.sites["0"].gamma.data.zero_()
    torch.manual_seed(0)
    blocks = [nn.Conv2d(3, 8, 3, 2, 1), nn.Sequential(nn.ReLU(), nn.Conv2d(8, 8, 3, 2, 1)),
              nn.Sequential(nn.ReLU(), nn.Conv2d(8, 4, 3, 1, 1))]
    skip = NFMStack(blocks, [8, 8, 4], passes=2, key_size=8, value_size=8, heads=2, top_k=4,
                    sites=[1, 2])
    assert sorted(skip.sites) == ["1", "2"]
    state = {k: v for k, v in full.state_dict().items() if not k.startswith("sites.0.")}
    skip.load_state_dict(state)
    x = torch.randn(2, 3, 16, 16)
    out = skip(x)
    assert torch.allclose(out, full(x), atol=1e-6)
    # the switch does something: with site 0 reading, the output differs
    full.sites["0"].gamma.data.fill_(0.7)
    assert not torch.allclose(out, full(x), atol=1e-4)


@pytest.mark.parametrize("sites", [[], [0, 0], [3], [-1]])
def test_bad_sites_are_refused(sites):
    blocks = [nn.Conv2d(3, 8, 3, 2, 1), nn.Conv2d(8, 8, 3, 2, 1), nn.Conv2d(8, 4, 3, 1, 1)]
    with pytest.raises(ValueError, match="sites must be distinct block indexes"):
        NFMStack(blocks, [8, 8, 4], sites=sites)


def test_nfm_resnet_sites_option():
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    encoder = encoder_class("nfm-resnet")(space, features_dim=16, sites=[1, 2])
    assert sorted(encoder.body.sites) == ["1", "2"]
    assert encoder(torch.rand(2, 4, 84, 84)).shape == (2, 16)


def test_vectors_work_as_one_by_one_maps():
    blocks = [nn.Linear(5, 6), nn.Sequential(nn.ReLU(), nn.Linear(6, 6))]
    stack = NFMStack(blocks, [6, 6], passes=2, key_size=4, value_size=4, heads=2, top_k=2)
    assert stack(torch.randn(3, 5)).shape == (3, 6)


@pytest.mark.parametrize("name", ["resnet", "nfm-resnet", "resnet18", "nfm-resnet18"])
def test_resnet_encoders_registered_and_shaped(name):
    assert name in ENCODERS
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    encoder = encoder_class(name)(space, features_dim=64)
    assert encoder(torch.rand(2, 4, 84, 84)).shape == (2, 64)


def test_nfm_resnet_starts_as_the_plain_resnet():
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    torch.manual_seed(0)
    plain = encoder_class("resnet")(space, features_dim=32)
    torch.manual_seed(0)
    nfm = encoder_class("nfm-resnet")(space, features_dim=32)
    # same stage and head weights; the NFM sites start with gamma = 0
    nfm.head.load_state_dict(plain.head.state_dict())
    for a, b in zip(plain.body, nfm.body.blocks):
        b.load_state_dict(a.state_dict())
    x = torch.rand(2, 4, 84, 84)
    assert torch.allclose(plain(x), nfm(x), atol=1e-6)


@pytest.mark.parametrize("arch, shapes, params", [
    # IMPALA: conv 3x3 (pad 1), max-pool 3/2 (pad 1), two residual blocks per stage
    ("impala", [(16, 42, 42), (32, 21, 21), (32, 11, 11)], [9872, 41632, 46240]),
    # ResNet-18 without the max-pool: 7x7/2 stem, then basic blocks (stride 2 from stage 2,
    # with a 1x1 projection)
    ("resnet18", [(64, 42, 42), (128, 21, 21), (256, 11, 11), (512, 6, 6)],
     [160320, 524928, 2098432, 8391168]),
])
def test_stage_layouts_against_hand_counts(arch, shapes, params):
    """Every stage's output shape on an 84x84 input and its parameter count, by hand."""
    from rimrl.nn.resnet import ARCHS

    build, channels = ARCHS[arch]
    x = torch.zeros(1, 4, 84, 84)
    for stage, shape, count in zip(build(4, channels), shapes, params, strict=True):
        x = stage(x)
        assert tuple(x.shape[1:]) == shape
        assert sum(p.numel() for p in stage.parameters()) == count


@pytest.mark.parametrize("name, arch", [("nfm-resnet", "impala"), ("nfm-resnet18", "resnet18")])
def test_nfm_encoders_wrap_their_stages_and_pass_settings_on(name, arch):
    from rimrl.nn.resnet import ARCHS

    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    encoder = encoder_class(name)(space, features_dim=16, top_k=2)
    assert isinstance(encoder.body, NFMStack)
    assert all(site.top_k == 2 for site in encoder.body.sites.values())
    assert len(encoder.body.blocks) == len(ARCHS[arch][1])
    plain = encoder_class(name.removeprefix("nfm-"))(space)
    assert isinstance(plain.body, nn.Sequential) and plain.features_dim == 512


def test_encoder_kwargs_check_follows_kwargs_to_the_parent_and_names_what_it_takes():
    """nfm-resnet18 takes **kwargs: the check reads ResNetEncoder's arguments too; the
    message lists exactly the accepted names (never self, observation_space or args)."""
    from rimrl.errors import UserError
    from rimrl.nn.encoders import check_encoder_kwargs

    cls = encoder_class("nfm-resnet18")
    check_encoder_kwargs(cls, {"top_k": 2, "sites": [1], "features_dim": 8}, "k")
    for bad in ("topk", "observation_space", "self", "args", "kwargs"):
        with pytest.raises(UserError) as caught:
            check_encoder_kwargs(cls, {bad: 1}, "policy.encoder_kwargs")
        assert str(caught.value) == (
            f"policy.encoder_kwargs: 'NFMResNet18Encoder' takes no argument '{bad}'; it takes: "
            "arch, batch_norm, channels, features_dim, heads, key_size, nfm, passes, sites, "
            "top_k, value_size")


def test_mlp_encoder_is_flatten_then_two_relu_layers():
    """By hand: a 2x3 observation -> 6 inputs -> Linear(6, 4) -> ReLU -> Linear(4, 4) -> ReLU."""
    from rimrl.nn.encoders import MlpEncoder

    encoder = MlpEncoder(gym.spaces.Box(-1, 1, (2, 3)), features_dim=4)
    layers = list(encoder.net)
    assert [type(m) for m in layers] == [nn.Flatten, nn.Linear, nn.ReLU, nn.Linear, nn.ReLU]
    assert (layers[1].in_features, layers[1].out_features, layers[3].in_features) == (6, 4, 4)
    x = torch.randn(5, 2, 3)
    first, second = layers[1], layers[3]
    expected = torch.relu(second(torch.relu(first(x.flatten(1)))))
    assert torch.equal(encoder(x), expected) and encoder.features_dim == 4


def test_nfm_stack_defaults_are_the_thesis_settings_and_arguments_reach_the_sites():
    """Section 10.4.5: K = 2 passes, 4 heads, top-4, keys and values of 32, no batch norm;
    one bias-free key/value projection per block; bad counts refused with their message."""
    blocks = [nn.Conv2d(3, 8, 3, 2, 1), nn.Conv2d(8, 4, 3, 1, 1)]
    stack = NFMStack(blocks, [8, 4])
    assert stack.passes == 2
    for site in stack.sites.values():
        assert (site.heads, site.top_k, site.key_size, site.value_size) == (4, 4, 32, 32)
        assert isinstance(site.out[1], nn.Identity)  # no batch norm
    assert all(p.bias is None and p.out_channels == 64 for p in stack.projections)
    normed = NFMStack(blocks, [8, 4], passes=1, batch_norm=True, key_size=8, value_size=8)
    assert normed.passes == 1
    assert all(isinstance(s.out[1], nn.BatchNorm2d) for s in normed.sites.values())
    with pytest.raises(ValueError, match="passes must be at least 1, got 0"):
        NFMStack(blocks, [8, 4], passes=0)
    with pytest.raises(ValueError, match="^one channel count per block is needed$"):
        NFMStack(blocks, [8])
    with pytest.raises(ValueError, match=r"block indexes in 0\.\.1, at least one; got \[2\]"):
        NFMStack(blocks, [8, 4], sites=[2])


@pytest.mark.parametrize("top_k", [2, 9])
def test_site_read_against_a_per_position_reference(top_k):
    """attend() against a literal loop over batch, position and head: scores q.k / sqrt(d)
    with a zero null entry first, the top_k kept, softmax, the weighted sum of values, then
    h + gamma * out(read). Two memory layers with 2 and 1 elements, so the weights of each
    layer's elements must be picked from the right offsets."""
    torch.manual_seed(0)
    site = NFMAttention(3, key_size=4, value_size=6, heads=2, top_k=top_k)
    site.gamma.data.fill_(0.7)
    h = torch.randn(2, 3, 2, 3)
    memory = [torch.randn(2, 2, 10, 2, 3), torch.randn(2, 1, 10, 2, 3)]  # keys 4, values 6
    got = site.attend(h, memory)

    q = site.query(h)
    read = torch.zeros(2, 6, 2, 3)
    for b in range(2):
        for i in range(2):
            for j in range(3):
                for head in range(2):
                    qk = q[b, 2 * head:2 * head + 2, i, j]
                    scores, values = [torch.tensor(0.0)], [torch.zeros(3)]
                    for layer in memory:
                        for e in range(layer.shape[1]):
                            cell = layer[b, e, :, i, j]
                            scores.append((qk * cell[2 * head:2 * head + 2]).sum() / 2 ** 0.5)
                            values.append(cell[4 + 3 * head:4 + 3 * head + 3])
                    s = torch.stack(scores)
                    kept = s >= s.sort(descending=True).values[min(top_k, len(s)) - 1]
                    w = torch.softmax(s.masked_fill(~kept, float("-inf")), 0)
                    read[b, 3 * head:3 * head + 3, i, j] = (w[:, None] * torch.stack(values)).sum(0)
    assert torch.allclose(got, h + 0.7 * site.out(read), atol=1e-5)


def test_residual_block_and_head_by_hand():
    """IMPALA's block: x + conv2(relu(conv1(relu(x)))) with an identity skip when the shape
    stays, a strided 1x1 projection otherwise; the encoder's head is ReLU, Flatten, Linear,
    ReLU; its NFM settings default to NFMStack's and reach the stack."""
    import inspect

    import torch.nn.functional as F

    from rimrl.nn.resnet import ResNetEncoder, _Residual

    torch.manual_seed(0)
    block = _Residual(3, 3)
    x = torch.randn(2, 3, 5, 5)
    conv1, conv2 = block.body[1], block.body[3]
    assert isinstance(block.skip, nn.Identity)
    assert torch.allclose(block(x), x + conv2(F.relu(conv1(F.relu(x)))), atol=1e-6)
    for c_in, c_out, stride in ((3, 4, 1), (3, 3, 2)):
        skip = _Residual(c_in, c_out, stride).skip
        assert isinstance(skip, nn.Conv2d) and skip.stride == (stride, stride)
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    encoder = ResNetEncoder(space, features_dim=8)
    assert [type(m).__name__ for m in encoder.head] == ["ReLU", "Flatten", "Linear", "ReLU"]
    stack = {n: p.default for n, p in inspect.signature(NFMStack).parameters.items()}
    ours = {n: p.default for n, p in inspect.signature(ResNetEncoder).parameters.items()}
    assert {k: ours[k] for k in ("passes", "top_k", "key_size", "value_size", "heads",
                                 "batch_norm")} == {k: stack[k] for k in (
        "passes", "top_k", "key_size", "value_size", "heads", "batch_norm")}
    nfm = ResNetEncoder(space, features_dim=8, nfm=True, batch_norm=True, passes=1)
    assert nfm.body.passes == 1
    assert any(isinstance(m, nn.BatchNorm2d) for m in nfm.body.modules())


def test_encoder_arguments_and_the_auto_choice_for_images():
    """features_dim goes only to encoders that take it, with the other kwargs (the caller's
    dict untouched); any channel count of a uint8 image gets the image encoder."""
    from rimrl.nn.encoders import encoder_arguments, encoder_for_space

    kwargs = {"arch": "impala"}
    assert encoder_arguments(ENCODERS["resnet"], kwargs, 64) == {"arch": "impala",
                                                                "features_dim": 64}
    assert encoder_arguments(ENCODERS["flatten"], kwargs, 64) == {"arch": "impala"}
    assert kwargs == {"arch": "impala"}
    image = lambda c: gym.spaces.Box(0, 255, (c, 84, 84), np.uint8)  # noqa: E731
    assert encoder_for_space(image(5)) is encoder_for_space(image(3)) is ENCODERS["nature"]


def test_site_output_mlp_and_head_checks():
    """The read goes through Conv1x1 -> (BatchNorm) -> ReLU -> Conv1x1 back to the layer's
    channels (section 10.3.2.1); key and value sizes must both split into the heads."""
    kinds = lambda m: [type(x).__name__ for x in m.out]  # noqa: E731
    assert kinds(NFMAttention(5)) == ["Conv2d", "Identity", "ReLU", "Conv2d"]
    site = NFMAttention(5, batch_norm=True)
    assert kinds(site) == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d"]
    assert site.out[0].in_channels == 32 and site.out[3].out_channels == 5
    for sizes in (dict(key_size=30), dict(value_size=30)):
        with pytest.raises(ValueError, match=r"must be multiples of heads \(4\)"):
            NFMAttention(5, **sizes)
