"""Tasks: batch checks (clear ValueErrors), the learned-loss mapping, task losses and errors."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from adaloss.tasks import BinaryClassification, Classification, Regression, check_finite

PROPERTY = settings(max_examples=200, deadline=None)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def logits_array(batch: int, columns: int, bound: float = 30.0):
    return arrays(np.float64, (batch, columns), elements=st.floats(-bound, bound))


@st.composite
def classification_batch(draw):
    batch, classes = draw(st.integers(1, 8)), draw(st.integers(2, 12))
    logits = torch.from_numpy(draw(logits_array(batch, classes)))
    labels = torch.tensor(
        draw(st.lists(st.integers(0, classes - 1), min_size=batch, max_size=batch))
    )
    return Classification(classes), logits, labels


@st.composite
def binary_batch(draw):
    batch = draw(st.integers(1, 8))
    column = draw(st.booleans())  # (B, 1) or (B,) outputs and labels
    logits = torch.from_numpy(draw(logits_array(batch, 1)))
    labels = torch.tensor(draw(st.lists(st.integers(0, 1), min_size=batch, max_size=batch)))
    labels = labels.to(draw(st.sampled_from([torch.long, torch.float32, torch.float64])))
    if column:
        labels = labels[:, None]
    else:
        logits = logits[:, 0]
    return BinaryClassification(), logits, labels


@st.composite
def regression_batch(draw):
    batch, outputs = draw(st.integers(1, 8)), draw(st.integers(1, 5))
    preds = torch.from_numpy(draw(logits_array(batch, outputs, 100.0)))
    targets = torch.from_numpy(draw(logits_array(batch, outputs, 100.0)))
    if outputs == 1 and draw(st.booleans()):
        preds, targets = preds[:, 0], targets[:, 0]  # (B,) also means one output
    return Regression(outputs), preds, targets


# ------------------------------------------------------------------------------- checks


def test_check_finite():
    check_finite("x", torch.tensor([1.0, -2.0]))
    check_finite("labels", torch.tensor([1, 2]))  # integers are always finite
    with pytest.raises(ValueError, match=r"x must be finite; found 2 NaN/Inf values in \(3,\)"):
        check_finite("x", torch.tensor([math.nan, 1.0, math.inf]))


@pytest.mark.parametrize("bad", [-1, 3, 10])
def test_classification_label_out_of_range(bad):
    labels = torch.tensor([0, bad, 2])
    with pytest.raises(
        ValueError, match=rf"\[0, 2\]; got values in \[{min(0, bad)}, {max(2, bad)}\]"
    ):
        Classification(3).check_targets(labels, 3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bool])
def test_classification_rejects_non_integer_labels(dtype):
    labels = torch.tensor([0, 1, 1]).to(dtype)
    with pytest.raises(ValueError, match=rf"integer.*got {dtype}"):
        Classification(3).check_targets(labels, 3)


def test_classification_accepts_long_labels():
    Classification(3).check_targets(torch.tensor([0, 2, 1]), 3)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.int8, torch.uint8], ids=str)
def test_labels_that_pass_the_check_work_everywhere(dtype):
    """Any integer dtype check_targets accepts must work in the mapping, loss and error."""
    task, logits = Classification(3), torch.tensor([[2.0, 0.0, 1.0], [0.0, 1.0, 3.0]])
    labels = torch.tensor([0, 1])
    try:
        task.check_targets(labels.to(dtype), 2)
    except ValueError:
        return  # rejecting the dtype up front is also fine
    torch.testing.assert_close(task.loss(logits, labels.to(dtype)), task.loss(logits, labels))
    assert task.error(logits, labels.to(dtype)).item() == 0.5
    onehot = task.learned_loss_inputs(logits, labels.to(dtype))[1]
    torch.testing.assert_close(onehot, torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))


def test_classification_rejects_two_dimensional_labels():
    with pytest.raises(ValueError, match=r"shape \(B,\); got \(3, 1\)"):
        Classification(3).check_targets(torch.tensor([[0], [1], [2]]), 3)


@pytest.mark.parametrize(
    "task", [Classification(3), BinaryClassification(), Regression(1), Regression(2)]
)
@pytest.mark.parametrize("batch", [3, 5])
def test_mismatched_batch_sizes(task, batch):
    targets = torch.zeros((4, 2) if task.num_outputs == 2 else (4,))
    if isinstance(task, Classification):
        targets = targets.long()
    task.check_targets(targets, 4)  # the matching batch passes
    with pytest.raises(ValueError, match=rf"batch size {batch} .*got targets of shape \(4"):
        task.check_targets(targets, batch)


@pytest.mark.parametrize("task", [Classification(3), BinaryClassification(), Regression(1)])
def test_targets_must_be_tensors(task):
    with pytest.raises(ValueError, match="torch.Tensor, got list"):
        task.check_targets([0, 1], 2)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("task", [BinaryClassification(), Regression(1), Regression(2)])
def test_non_finite_targets(task, bad):
    targets = torch.zeros(3, task.num_outputs) if task.num_outputs > 1 else torch.zeros(3)
    targets.view(-1)[1] = bad
    with pytest.raises(ValueError, match="targets must be finite; found 1 NaN/Inf"):
        task.check_targets(targets, 3)


@pytest.mark.parametrize(
    ("task", "shape"),
    [
        (Classification(3), (4, 2)),
        (Classification(3), (4, 4)),
        (Classification(3), (4,)),
        (BinaryClassification(), (4, 2)),
        (Regression(1), (4, 2)),
        (Regression(3), (4,)),
        (Regression(3), (4, 1)),
        (Regression(3), (4, 3, 1)),
        (Regression(3), (5, 3)),
    ],
)
def test_wrong_output_shape(task, shape):
    expected = f"({4}, {task.num_outputs})"
    with pytest.raises(ValueError, match=rf"{re.escape(expected)}; got {re.escape(str(shape))}"):
        task.check_outputs(torch.zeros(shape), 4)


@pytest.mark.parametrize(
    ("task", "shape"),
    [
        (Classification(3), (4, 3)),
        (BinaryClassification(), (4,)),
        (BinaryClassification(), (4, 1)),
        (Regression(1), (4,)),
        (Regression(1), (4, 1)),
        (Regression(3), (4, 3)),
    ],
)
def test_right_output_shape(task, shape):
    task.check_outputs(torch.zeros(shape), 4)


def test_integer_outputs_rejected():
    with pytest.raises(ValueError, match="floating point, got torch.int64"):
        Classification(3).check_outputs(torch.zeros(4, 3, dtype=torch.long), 4)


@pytest.mark.parametrize("labels", [[0, 2, 1], [0.5, 1.0, 0.0], [-1, 0, 1], [[0, 1, 0]]])
def test_binary_labels_must_be_zero_or_one(labels):
    targets = torch.tensor(labels)
    batch = targets.shape[0]
    with pytest.raises(ValueError, match="binary labels"):
        BinaryClassification().check_targets(targets, batch)


@pytest.mark.parametrize(
    "labels",
    [
        torch.tensor([0, 1, 1]),
        torch.tensor([0.0, 1.0, 0.0]),
        torch.tensor([[1], [0], [1]]),
    ],
)
def test_binary_labels_accepted(labels):
    BinaryClassification().check_targets(labels, 3)


@pytest.mark.parametrize("dtype", [torch.long, torch.int32, torch.bool])
def test_regression_rejects_integer_targets(dtype):
    with pytest.raises(ValueError, match=rf"floating point; got {dtype}"):
        Regression(1).check_targets(torch.zeros(3, dtype=dtype), 3)


@pytest.mark.parametrize(
    ("outputs", "shape"), [(1, (3, 2)), (1, (3, 1, 1)), (2, (3,)), (2, (3, 1)), (2, (3, 3))]
)
def test_regression_target_shape(outputs, shape):
    with pytest.raises(ValueError, match=rf"\(B, {outputs}\).*got {re.escape(str(shape))}"):
        Regression(outputs).check_targets(torch.zeros(shape), 3)


@pytest.mark.parametrize("shape", [(3,), (3, 1)])
def test_regression_one_output_accepts_both_shapes(shape):
    task = Regression(1)
    targets = torch.arange(3.0).reshape(shape)
    task.check_targets(targets, 3)
    pred, target = task.learned_loss_inputs(torch.ones(3), targets)
    assert pred.shape == target.shape == (3, 1)
    torch.testing.assert_close(target[:, 0], torch.arange(3.0))


def test_constructor_arguments_validated():
    with pytest.raises(ValueError, match="num_classes"):
        Classification(1)
    with pytest.raises(ValueError, match="num_outputs"):
        Regression(0)


# ----------------------------------------------------------------------------- mapping


@PROPERTY
@given(batch=classification_batch())
def test_classification_mapping(batch):
    task, logits, labels = batch
    task.check_outputs(logits, len(labels))
    task.check_targets(labels, len(labels))
    probs, onehot = task.learned_loss_inputs(logits, labels)
    assert probs.shape == onehot.shape == logits.shape
    assert probs.dtype == onehot.dtype == logits.dtype
    assert (probs >= 0).all() and (probs <= 1).all()
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(len(labels), dtype=torch.float64))
    shifted = (logits - logits.max(dim=1, keepdim=True).values).exp()
    torch.testing.assert_close(probs, shifted / shifted.sum(dim=1, keepdim=True))
    torch.testing.assert_close(onehot.sum(dim=1), torch.ones(len(labels), dtype=torch.float64))
    assert (onehot[torch.arange(len(labels)), labels] == 1).all()
    assert ((onehot == 0) | (onehot == 1)).all()


@PROPERTY
@given(batch=binary_batch())
def test_binary_mapping(batch):
    task, logits, labels = batch
    task.check_outputs(logits, len(labels))
    task.check_targets(labels, len(labels))
    probs, target = task.learned_loss_inputs(logits, labels)
    assert probs.shape == target.shape == (len(labels), 1)
    assert target.dtype == probs.dtype == torch.float64
    torch.testing.assert_close(probs[:, 0], 1 / (1 + torch.exp(-logits.reshape(-1))))
    torch.testing.assert_close(target[:, 0], labels.reshape(-1).double())


@PROPERTY
@given(batch=regression_batch())
def test_regression_mapping_is_raw(batch):
    task, preds, targets = batch
    task.check_outputs(preds, preds.shape[0])
    task.check_targets(targets, preds.shape[0])
    pred, target = task.learned_loss_inputs(preds, targets.float())
    assert pred.shape == target.shape == (preds.shape[0], task.num_outputs)
    assert target.dtype == pred.dtype == preds.dtype  # targets follow the outputs' dtype
    assert torch.equal(pred, preds.reshape(pred.shape))
    torch.testing.assert_close(target, targets.float().double().reshape(pred.shape))


# ------------------------------------------------------------------ task losses and errors


@PROPERTY
@given(batch=classification_batch())
def test_classification_loss_and_error(batch):
    task, logits, labels = batch
    rows = torch.arange(len(labels))
    log_probs = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    torch.testing.assert_close(task.loss(logits, labels), -log_probs[rows, labels].mean())
    mistakes = sum(int(logits[i].argmax()) != int(labels[i]) for i in range(len(labels)))
    assert task.error(logits, labels).item() == pytest.approx(mistakes / len(labels))


@PROPERTY
@given(batch=binary_batch())
def test_binary_loss_and_error(batch):
    task, logits, labels = batch
    z, y = logits.reshape(-1), labels.reshape(-1).double()
    # BCE with logits, stable: max(z, 0) − z·y + log(1 + e^{−|z|})
    expected = (z.clamp(min=0) - z * y + torch.log1p(torch.exp(-z.abs()))).mean()
    torch.testing.assert_close(task.loss(logits, labels), expected)
    mistakes = sum(int(z[i] > 0) != int(y[i]) for i in range(len(y)))
    assert task.error(logits, labels).item() == pytest.approx(mistakes / len(y))


@PROPERTY
@given(batch=regression_batch())
def test_regression_loss_and_error_are_mse(batch):
    task, preds, targets = batch
    expected = ((preds - targets) ** 2).mean()
    torch.testing.assert_close(task.loss(preds, targets), expected)
    torch.testing.assert_close(task.error(preds, targets), expected)


def test_regression_loss_does_not_broadcast_b_against_b1():
    """(B,) outputs with (B, 1) targets is one output per row, not a (B, B) broadcast."""
    preds = torch.tensor([0.0, 1.0, 2.0])
    targets = torch.tensor([[0.0], [1.0], [4.0]])
    assert Regression(1).loss(preds, targets).item() == pytest.approx(4.0 / 3.0)


def test_task_losses_match_torch_examples():
    """Hand-computed values: cross-entropy, BCE-with-logits and MSE on tiny batches."""
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])
    labels = torch.tensor([0, 0])
    # −log(1/2) and −log(3/4)
    ce = (math.log(2.0) + math.log(4.0 / 3.0)) / 2
    assert Classification(2).loss(logits, labels).item() == pytest.approx(ce, rel=1e-6)
    assert Classification(2).error(logits, labels).item() == 0.0  # argmax ties → class 0
    z = torch.tensor([0.0, math.log(3.0)])
    y = torch.tensor([1.0, 0.0])
    bce = (math.log(2.0) + math.log(4.0)) / 2  # −log σ(0), −log(1 − σ(log 3)) = −log(1/4)
    assert BinaryClassification().loss(z, y).item() == pytest.approx(bce, rel=1e-6)
    assert BinaryClassification().error(z, y).item() == 1.0  # z = 0 predicts class 0
