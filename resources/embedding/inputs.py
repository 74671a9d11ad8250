"""A planned batch as model inputs: right-padded rows, or all rows packed into one sequence.

Padded rows are what every attention kernel takes; a length-sorted budget batch keeps their
padding small. Packed rows carry no padding at all and no mask: on a GPU, PyTorch's
variable-length flash attention (`torch.nn.attention.varlen`) attends within each row of the
packed sequence, and every other layer of an encoder works token by token, so it never sees a
row boundary. Without a mask the attention kernel is flash attention instead of the masked
memory-efficient one.

Both shapes are built on the host in one vectorized gather and copied to the device in one
transfer, and both can be cut into row ranges, which the out-of-memory policy needs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager

import numpy as np
import torch

from resources.embedding.model import EncoderModel
from resources.embedding.planner import Batch, padded_length
from resources.embedding.tokenization import Tokenized


class BatchInputs(ABC):
    """The rows of one batch, longest first, ready to run whole or in row ranges."""

    def __init__(self, tokenized: Tokenized, offsets: np.ndarray, batch: Batch, pin: bool):
        self.lengths = tokenized.lengths[batch.indices].astype(np.int64)
        self.batch = batch
        self.pin = pin

    @abstractmethod
    def cost(self, start: int, end: int) -> int:
        """Padded tokens of rows start..end: the budget's unit."""

    @abstractmethod
    def encode(
        self,
        model: EncoderModel,
        start: int,
        end: int,
        mark: Callable[[str], AbstractContextManager],
    ) -> torch.Tensor:
        """Unit vectors of rows start..end on the model's device (copies are non-blocking).

        `mark(name)` (NVTX when profiling) marks the copy, forward and pooling phases.
        """

    @abstractmethod
    def row_ids(self, row: int) -> torch.Tensor:
        """One row's token ids, unpadded, on the host: for the exact CPU fallback."""

    def _host(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        return tensor.pin_memory() if self.pin else tensor


class PaddedInputs(BatchInputs):
    """Right-padded ids and a mask, [rows, longest]; pieces are as wide as their longest row."""

    def __init__(
        self,
        tokenized: Tokenized,
        offsets: np.ndarray,
        batch: Batch,
        pin: bool,
        pad_multiple: int,
        limit: int,
    ):
        super().__init__(tokenized, offsets, batch, pin)
        self.pad_multiple = pad_multiple
        self.limit = limit
        columns = np.arange(batch.padded_length)
        mask = columns[None, :] < self.lengths[:, None]
        positions = np.minimum(
            offsets[batch.indices][:, None] + columns[None, :], len(tokenized.ids) - 1
        )
        ids = np.where(mask, tokenized.ids[positions], 0).astype(np.int64)
        # One host buffer, so one copy to the device: ids, then the mask.
        self.host = self._host(np.stack([ids, mask.astype(np.int64)]))

    def width(self, start: int) -> int:
        if start == 0:
            return self.batch.padded_length
        return padded_length(int(self.lengths[start]), self.pad_multiple, self.limit)

    def cost(self, start: int, end: int) -> int:
        return (end - start) * self.width(start)

    def encode(self, model, start, end, mark):
        with mark("copy-in"):
            piece = self.host[:, start:end, : self.width(start)]
            piece = piece.to(model.device, non_blocking=True)
        return model.encode(piece[0], piece[1], mark)

    def row_ids(self, row):
        return self.host[0, row, : int(self.lengths[row])]


class PackedInputs(BatchInputs):
    """All rows end to end in one sequence, with the row starts (`cu_seqlens`).

    The host gathers only the token ids; each token's position and row follow from the starts
    and are derived on the device, which keeps the launching thread's work per batch (and the
    bytes it pins and copies) to one int32 value per token.
    """

    def __init__(self, tokenized: Tokenized, offsets: np.ndarray, batch: Batch, pin: bool):
        super().__init__(tokenized, offsets, batch, pin)
        lengths = self.lengths
        self.starts = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=self.starts[1:])
        # Token t of row r sits at offsets[r] + (t - starts[r]) in the tokenized ids.
        shift = np.repeat(offsets[batch.indices] - self.starts[:-1], lengths)
        ids = tokenized.ids[shift + np.arange(self.starts[-1])].astype(np.int32, copy=False)
        self.host_ids = self._host(ids)
        # Pinned too: a copy from pageable memory makes the driver wait for the stream, which
        # would stop the host from preparing batches while the device runs earlier ones.
        self.host_starts = self._host(self.starts.astype(np.int32))

    def cost(self, start: int, end: int) -> int:
        # The planner's unit (rows x longest), which bounds the tokens and the row buffer that
        # pooling unpacks into.
        return (end - start) * int(self.lengths[start])

    def encode(self, model, start, end, mark):
        first, last = int(self.starts[start]), int(self.starts[end])
        with mark("copy-in"):
            ids = self.host_ids[first:last].to(model.device, non_blocking=True)
            starts = self.host_starts[start : end + 1].to(model.device, non_blocking=True) - first
        return model.encode_packed(ids, starts, int(self.lengths[start]), mark)

    def row_ids(self, row):
        return self.host_ids[int(self.starts[row]) : int(self.starts[row + 1])]
