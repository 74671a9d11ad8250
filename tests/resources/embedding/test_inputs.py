import numpy as np
import torch

from resources.embedding.inputs import PackedInputs, PaddedInputs
from resources.embedding.planner import Batch
from resources.embedding.tokenization import Tokenized

# Three rows of 2, 4 and 3 tokens; the batch takes them longest first.
TOKENIZED = Tokenized(ids=np.array([1, 2, 10, 11, 12, 13, 20, 21, 22]), lengths=np.array([2, 4, 3]))
BATCH = Batch(indices=np.array([1, 2, 0]), padded_length=4, tokens=9)


def test_padded_rows_are_right_padded_with_a_mask():
    inputs = PaddedInputs(TOKENIZED, TOKENIZED.offsets, BATCH, pin=False, pad_multiple=1, limit=8)
    ids, mask = inputs.host.numpy()
    assert ids.tolist() == [[10, 11, 12, 13], [20, 21, 22, 0], [1, 2, 0, 0]]
    assert mask.sum(axis=1).tolist() == [4, 3, 2]
    assert inputs.cost(0, 3) == 12
    assert inputs.cost(1, 3) == 6  # a piece is as wide as its own longest row
    assert inputs.row_ids(2).tolist() == [1, 2]


def test_packed_rows_run_end_to_end_with_row_starts():
    inputs = PackedInputs(TOKENIZED, TOKENIZED.offsets, BATCH, pin=False)
    assert inputs.host_ids.tolist() == [10, 11, 12, 13, 20, 21, 22, 1, 2]
    assert inputs.host_ids.dtype == torch.int32
    assert inputs.starts.tolist() == inputs.host_starts.tolist() == [0, 4, 7, 9]
    assert inputs.cost(0, 3) == 12  # the planner's unit: rows x longest
    assert inputs.row_ids(1).tolist() == [20, 21, 22]
