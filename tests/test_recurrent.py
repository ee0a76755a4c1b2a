"""The recurrent architectures (``rnn``, ``lstm``, ``gru``): shapes with and without the front end and in
both directions, the ``last`` pooling, costs by hand, the receptive field and the messages.

The registry-generated tests (test_architectures.py, test_costs.py, test_latency_backends.py) cover them
like every other architecture; these check what is particular to them, at tiny sizes.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest
import torch

from ecgsearch.plugins import get_registries
from ecgsearch.train.costs import count_params, estimate_costs, fvcore_macs, model_costs, torch_macs
from ecgsearch.train.receptive_field import receptive_field

pytestmark = pytest.mark.usefixtures("single_thread")  # see conftest.py

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
LEADS, SAMPLES, OUTPUTS = 3, 64, 2
TINY = {"hidden": 4, "front_width": 4, "front_kernel": 3, "front_stride": 2}


def create(name: str, samples: int = SAMPLES, **hparams: Any) -> torch.nn.Module:
    torch.manual_seed(0)
    return get_registries().architectures.get(name).create(LEADS, samples, OUTPUTS, **hparams)


def costs(name: str, samples: int = SAMPLES, **hparams: Any) -> Any:
    return estimate_costs(get_registries().architectures.get(name).load(), LEADS, samples, OUTPUTS, hparams)


@pytest.mark.parametrize("name", GATES)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("front_layers", [0, 2])
def test_shapes_costs_and_the_whole_input_as_receptive_field(name: str, bidirectional: bool,
                                                             front_layers: int) -> None:
    hparams = {**TINY, "layers": 2, "bidirectional": bidirectional, "front_layers": front_layers}
    model = create(name, **hparams)
    x = torch.randn(2, LEADS, SAMPLES)
    out = model(x)
    assert out.shape == (2, OUTPUTS) and bool(torch.isfinite(out).all())
    out.sum().backward()
    features = 4 * (2 if bidirectional else 1)
    assert model.features(x).shape == (2, SAMPLES // 2**front_layers, features)  # each conv halves the steps
    assert model.head.in_features == features
    analytic = costs(name, **hparams)
    assert analytic == model_costs(model, LEADS, SAMPLES)  # parameters, MACs, stages, width, field
    # a recurrent layer carries every step to the end (and, backwards, to the start): the whole input
    assert analytic.receptive_field == receptive_field(model, SAMPLES) == SAMPLES
    assert analytic.stages == 2 and analytic.feature_width == features


@pytest.mark.parametrize("name", GATES)
def test_last_pooling_is_the_final_hidden_state_of_both_directions(name: str) -> None:
    model = create(name, layers=1, hidden=4, bidirectional=True, front_layers=0, pool="last").eval()
    with torch.no_grad():
        out, state = model.stages[0].rnn(model.stem(torch.randn(2, LEADS, SAMPLES)))
        h_n = state[0] if name == "lstm" else state  # (directions, batch, hidden)
        assert torch.allclose(model.head.pooled(out), torch.cat([h_n[0], h_n[1]], dim=1))


def test_lstm_parameters_and_macs_by_hand() -> None:
    h, width, steps = 4, 5, SAMPLES // 2
    front = LEADS * width * 3 + 2 * width  # conv (kernel 3, stride 2, no bias), BatchNorm
    layer0 = 2 * (4 * h * (width + h) + 2 * 4 * h)  # 2 directions x (input + recurrent matrices, 2 biases)
    layer1 = 2 * (4 * h * (2 * h + h) + 2 * 4 * h)  # reads both directions: 2h inputs
    head = 2 * h * OUTPUTS + OUTPUTS
    macs = LEADS * width * 3 * steps + steps * 2 * 4 * h * (width + h) + steps * 2 * 4 * h * (2 * h + h) \
        + 2 * h * OUTPUTS
    hparams = {"layers": 2, "hidden": h, "bidirectional": True, "front_layers": 1, "front_width": width,
               "front_kernel": 3, "front_stride": 2}
    model = create("lstm", **hparams)
    assert count_params(model) == costs("lstm", **hparams).params == front + layer0 + layer1 + head
    # on the CPU the LSTM runs as oneDNN's mkldnn_rnn_layer, mapped to the same matrix products
    assert torch_macs(model, LEADS, SAMPLES) == fvcore_macs(model, LEADS, SAMPLES) == macs
    assert costs("lstm", **hparams).macs == macs


@pytest.mark.parametrize("name", GATES)
def test_bad_values_name_the_cell_and_the_parameter(name: str) -> None:
    for hparams, samples, text in [
        ({"layers": 0}, SAMPLES, f"{name}: layers=0 must be an integer >= 1."),
        ({"front_layers": -1}, SAMPLES, f"{name}: front_layers=-1 must be an integer >= 0."),
        ({"bidirectional": 1}, SAMPLES, f"{name}: bidirectional=1 must be true or false."),
        ({"pool": "first"}, SAMPLES, f"{name}: pool='first' is not supported; allowed values: last, mean, max."),
        ({"dropout": 1.0}, SAMPLES, f"{name}: dropout=1.0 must be a number in [0.0, 1.0)."),
        # the default front end (2 convs of kernel 7, stride 4) leaves 5 of 20 samples for its last conv
        ({}, 20, (f"{name}: front_kernel=7 is longer than the 5 samples left after downsampling num_samples=20; "
                  "use a smaller front_kernel, fewer stages or longer records.")),
    ]:
        with pytest.raises(ValueError) as error:
            create(name, samples, **hparams)
        assert str(error.value) == text
        with pytest.raises(ValueError) as costing:
            costs(name, samples, **hparams)
        assert str(costing.value) == text


@pytest.mark.parametrize("name", GATES)
def test_the_factories_share_one_builder_and_pickle(name: str) -> None:
    factory = get_registries().architectures.get(name).load()
    assert factory.__name__ == name and "front_stride" in repr(factory)
    copy = pickle.loads(pickle.dumps(factory))
    assert copy.analytic_costs(LEADS, SAMPLES, OUTPUTS, **TINY) == factory.analytic_costs(LEADS, SAMPLES, OUTPUTS,
                                                                                         **TINY)
    assert type(copy(LEADS, SAMPLES, OUTPUTS, **TINY).stages[0].rnn).__name__ == name.upper()


@pytest.mark.parametrize("layer", [torch.nn.RNN, torch.nn.LSTM, torch.nn.GRU])
def test_a_plain_recurrent_layer_in_any_model_sees_the_whole_input(layer: type[torch.nn.RNNBase]) -> None:
    """A third-party model (no stem/stages contract) with a bare PyTorch recurrent layer after a short conv:
    the layer spreads every step over the sequence, so the field is the whole input, not the conv's 3."""
    model = torch.nn.Sequential(torch.nn.Conv1d(LEADS, 4, 3, padding=1), layer(4, 4, batch_first=True))
    assert receptive_field(model, 500) == 500
    assert receptive_field(torch.nn.Sequential(torch.nn.Conv1d(LEADS, 4, 3, padding=1)), 500) == 3
