"""training.generator_model's optional attention: off changes nothing, on starts as the model without it, masks."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from training.generator_model import (
    Attention,
    DecoderStep,
    EncoderForExport,
    GeneratorConfig,
    Memory,
    SketchRNN,
)
from training.train_generator import build_model, parse_args, stored_model_config

TINY = dict(n_classes=3, enc_hidden=8, dec_hidden=16, z_size=4, class_embed=4, n_mixtures=2)
LSTM = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
KEYS_WITHOUT_ATTENTION = [  # the layout of every checkpoint trained before attention existed (the shipped one too)
    *(f"encoder.lstm.{w}" for w in LSTM),
    *(f"encoder.lstm.{w}_reverse" for w in LSTM),
    "encoder.to_mu.weight",
    "encoder.to_mu.bias",
    "encoder.to_sigma.weight",
    "encoder.to_sigma.bias",
    "decoder.class_embedding.weight",
    *(f"decoder.lstm.{w}" for w in LSTM),
    "decoder.head.weight",
    "decoder.head.bias",
]
ATTENTION_KEYS = ["decoder.attention.query.weight", "decoder.attention.read_out.weight"]


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """stroke-5 (3, 9, 5) with the start token, drawings of 8, 5 and 2 rows then end-of-drawing padding."""
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([8, 5, 2])
    s5 = torch.zeros(3, 9, 5)
    s5[:, 0, 2] = 1
    s5[:, 1:, :2] = torch.randn(3, 8, 2, generator=g)
    s5[:, 1:, 2] = 1
    for i, n in enumerate(lengths.tolist()):
        s5[i, n, 2:] = torch.tensor([0.0, 1.0, 0.0])  # the last point lifts the pen
        s5[i, n + 1 :, :] = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0])
    return s5, lengths, torch.tensor([0, 2, 3])  # 3: the "unknown" class


def _pair() -> tuple[SketchRNN, SketchRNN]:
    """A model without attention and one with it, loaded from the first's weights."""
    torch.manual_seed(0)
    plain = SketchRNN(GeneratorConfig(**TINY)).eval()
    attending = SketchRNN(GeneratorConfig(**TINY, attention=True)).eval()
    missing, unexpected = attending.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing) == ATTENTION_KEYS and not unexpected
    return plain, attending


def test_attention_off_keeps_the_state_dict_layout():
    assert GeneratorConfig().attention is False
    assert list(SketchRNN(GeneratorConfig(**TINY)).state_dict()) == KEYS_WITHOUT_ATTENTION
    keys = list(SketchRNN(GeneratorConfig(**TINY, attention=True)).state_dict())
    assert keys == KEYS_WITHOUT_ATTENTION + ATTENTION_KEYS  # new weights last: the old ones keep their order


def test_attention_from_weights_without_it_gives_the_same_outputs():
    plain, attending = _pair()
    assert torch.count_nonzero(attending.decoder.attention.read_out.weight) == 0
    s5, lengths, labels = _batch()
    torch.manual_seed(1)  # the same z noise for both
    p0, mu0, sigma0 = plain(s5, lengths, labels)
    torch.manual_seed(1)
    p1, mu1, sigma1 = attending(s5, lengths, labels)
    for a, b in [(p0.log_pi, p1.log_pi), (p0.mu, p1.mu), (p0.pen_logits, p1.pen_logits), (mu0, mu1)]:
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # ... and the encoder's other outputs do not move when it also returns its states
    e = plain.decoder.class_embedding(labels)
    mu2, sigma2, memory = attending.encoder(s5[:, 1:], e, lengths, return_memory=True)
    torch.testing.assert_close(mu2, mu0, rtol=0, atol=0)
    torch.testing.assert_close(sigma2, sigma0, rtol=0, atol=0)
    assert memory.states.shape == (3, 8, 16) and memory.mask.sum(1).tolist() == [8, 5, 2]


def test_masked_positions_get_zero_attention_weight():
    torch.manual_seed(0)
    attention = Attention(GeneratorConfig(**TINY))
    states = torch.randn(3, 6, 16)  # (B, S, 2 He)
    mask = torch.arange(6)[None, :] < torch.tensor([6, 3, 1])[:, None]  # (B, S)
    out = torch.randn(3, 4, 16) * 5  # (B, T, Hd), large: sharp scores
    w = attention.weights(out, Memory(states, mask))  # (B, T, S)
    assert w.shape == (3, 4, 6)
    assert torch.all(w[~mask[:, None, :].expand_as(w)] == 0)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 4))
    assert torch.all(w[2, :, 0] == 1)  # a one-row drawing: all weight on its row
    with torch.no_grad():
        attention.read_out.weight.normal_()
        before = attention(out, Memory(states, mask))
        states[~mask] = 100.0  # what lies past a drawing's end cannot change the output
        torch.testing.assert_close(attention(out, Memory(states, mask)), before, rtol=0, atol=0)


def test_attention_models_are_not_exported_and_plain_ones_still_are():
    plain, attending = _pair()
    DecoderStep(plain)  # no error
    EncoderForExport(plain)
    with pytest.raises(ValueError, match="no ONNX export"):
        DecoderStep(attending)
    with pytest.raises(ValueError, match="no ONNX export"):
        EncoderForExport(attending)


def test_attention_flag_and_checkpoints_that_predate_it():
    flags = ["--enc-hidden", "8", "--dec-hidden", "16", "--z-size", "4", "--class-embed", "4", "--n-mixtures", "2"]
    model, mcfg = build_model(parse_args(["--attention", *flags]), 3)
    assert mcfg["attention"] is True and model.decoder.attention is not None
    assert parse_args([]).attention is False
    old = {k: v for k, v in asdict(GeneratorConfig(**TINY)).items() if k != "attention"}  # saved before the field
    assert stored_model_config({"config": {"recipe": "shipped"}, "model_config": old}) == asdict(
        GeneratorConfig(**TINY)
    )
