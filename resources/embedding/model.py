"""Loading a sentence-transformers model directory, the forward pass and pooling.

The transformer itself is transformers' `AutoModel` with PyTorch SDPA attention; what is written
here is only what sentence-transformers adds on top (pooling and normalization, read from the
directory's own module configs), so vectors match `SentenceTransformer.encode` for the same
directory without carrying sentence-transformers' per-batch tokenization into the hot loop.

Packed batches (see `inputs.py`) go through the same module: transformers lets a model's
attention be replaced by a registered function (`AttentionInterface`), and passes the call's
`cu_seq_lens_q` and `max_length_q` through to it, as its own flash-attention path does.
"""

from __future__ import annotations

import hashlib
import json
import threading
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AttentionInterface, AutoModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
from transformers.utils import logging as hf_logging

from resources.tokenizer.model_source import resolve_model_path

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


try:
    from torch.nn.attention.varlen import varlen_attn
except ImportError:  # torch before 2.9
    varlen_attn = None

# The attention this module registers with transformers: SDPA for padded batches, variable-length
# attention for packed ones.
PACKED_ATTENTION = "sdpa_or_varlen"


def _attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    starts = kwargs.pop("cu_seq_lens_q", None)
    if starts is None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, scaling=scaling, **kwargs
        )
    # [1, heads, tokens, head_dim] back to the projections' own [tokens, heads, head_dim].
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))
    if q.is_cuda:
        longest = kwargs["max_length_q"]
        out = varlen_attn(q, k, v, starts, starts, longest, longest, scale=scaling)
    else:
        # The CPU has no variable-length kernel: attend row by row. Packed batches are a GPU
        # path; this keeps them runnable (and testable) anywhere.
        bounds = starts.tolist()
        out = torch.cat(
            [
                F.scaled_dot_product_attention(
                    *(t[a:b].transpose(0, 1) for t in (q, k, v)), scale=scaling
                ).transpose(0, 1)
                for a, b in zip(bounds, bounds[1:], strict=False)
            ]
        )
    return out.unsqueeze(0), None


AttentionInterface.register(PACKED_ATTENTION, _attention)
AttentionMaskInterface.register(PACKED_ATTENTION, sdpa_mask)


def packing_supported(device: torch.device, dtype: torch.dtype) -> bool:
    """Variable-length attention is flash attention: CUDA, half precision, recent torch."""
    return varlen_attn is not None and device.type == "cuda" and dtype != torch.float32


def resolve_device(device: str) -> torch.device:
    """'auto' is the current GPU when there is one, else the CPU; 'cuda' gets its index."""
    resolved = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    )
    if resolved.type == "cuda" and resolved.index is None:
        # Memory queries and caps want an explicit index.
        resolved = torch.device("cuda", torch.cuda.current_device())
    return resolved


def device_scope(device: torch.device) -> AbstractContextManager:
    """`device` as the current CUDA device for the block (nothing on the CPU).

    Many CUDA calls follow the current device rather than any tensor's: new events and streams,
    `torch.cuda.current_stream()`, the caching allocator's `empty_cache`, pinned host memory,
    some attention kernels' metadata. An engine on `cuda:1` whose work ran with `cuda:0`
    current recorded its completion events on the wrong GPU and read vectors back before they
    were written. The engine's every entry point and thread runs inside this scope.
    """
    return torch.cuda.device(device) if device.type == "cuda" else nullcontext()


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """'auto' is bf16 on GPUs that have it, fp16 on older GPUs, fp32 on the CPU.

    Reduced precision on the CPU is slower than fp32 for BERT-sized models without AMX, and
    the CPU path is also the exact fallback.
    """
    if dtype != "auto":
        return _DTYPES[dtype]
    if device.type != "cuda":
        return torch.float32
    # Asked of this device, not the current one: bf16 needs compute capability 8.0 (Ampere).
    return torch.bfloat16 if torch.cuda.get_device_capability(device)[0] >= 8 else torch.float16


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


@dataclass(frozen=True)
class Pooling:
    mode: str  # "mean", "cls" or "max"
    normalize: bool


def read_pooling(path: Path) -> Pooling:
    """Pooling and normalization as declared by the directory's modules.json (mean without it)."""
    modules_file = path / "modules.json"
    if not modules_file.is_file():
        return Pooling(mode="mean", normalize=True)
    modules = json.loads(modules_file.read_text())
    mode = "mean"
    normalize = False
    for module in modules:
        kind = module["type"].rsplit(".", 1)[-1]
        if kind == "Pooling":
            config = json.loads((path / module["path"] / "config.json").read_text())
            if config.get("pooling_mode_cls_token"):
                mode = "cls"
            elif config.get("pooling_mode_max_tokens"):
                mode = "max"
            elif not config.get("pooling_mode_mean_tokens", True):
                raise ValueError(f"unsupported pooling in {path}: {config}")
        elif kind == "Normalize":
            normalize = True
    return Pooling(mode=mode, normalize=normalize)


def read_max_length(path: Path) -> int:
    """sentence-transformers' max_seq_length, else the model's position table."""
    st_config = path / "sentence_bert_config.json"
    if st_config.is_file():
        value = json.loads(st_config.read_text()).get("max_seq_length")
        if value:
            return int(value)
    return int(json.loads((path / "config.json").read_text())["max_position_embeddings"])


def read_dimension(path: Path) -> int:
    """The width of the vectors: the transformer's hidden size (pooling keeps it)."""
    return int(json.loads((path / "config.json").read_text())["hidden_size"])


_SHA_CACHE: dict[Path, str] = {}
_SHA_LOCK = threading.Lock()


def weights_sha256(path: Path) -> str:
    """SHA-256 over the weight files, once per process: it names the model in checkpoints."""
    path = path.resolve()
    with _SHA_LOCK:
        if path not in _SHA_CACHE:
            files = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin"))
            if not files:
                raise FileNotFoundError(f"no weight files in {path}")
            digest = hashlib.sha256()
            for file in files:
                with file.open("rb") as handle:
                    while chunk := handle.read(1 << 22):
                        digest.update(chunk)
            _SHA_CACHE[path] = digest.hexdigest()
        return _SHA_CACHE[path]


class EncoderModel:
    """A loaded encoder on one device in one precision: token ids in, unit vectors out."""

    def __init__(
        self, path: Path, device: torch.device, dtype: torch.dtype, compiled: bool = False
    ) -> None:
        self.path = path
        self.device = device
        self.dtype = dtype
        # transformers draws a progress bar for every load; in a step's log it is a line of
        # carriage returns per run for a local file that loads in a fraction of a second.
        bars_were_on = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            self.module = AutoModel.from_pretrained(
                str(path), dtype=dtype, attn_implementation=PACKED_ATTENTION
            ).to(device)
        finally:
            if bars_were_on:
                hf_logging.enable_progress_bar()
        self.module.eval()
        # Optional: inductor fuses the small elementwise kernels that dominate a 384-wide model.
        # dynamic=True compiles for symbolic batch and length, so new shapes do not recompile.
        self.forward = torch.compile(self.module, dynamic=True) if compiled else self.module
        self.pooling = read_pooling(path)
        config = self.module.config
        self.dimension = int(config.hidden_size)
        self.vocab_size = int(config.vocab_size)
        self.max_positions = int(config.max_position_embeddings)

    @torch.inference_mode()
    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        ranges: type[AbstractContextManager] | None = None,
    ) -> torch.Tensor:
        """Float32 pooled vectors [rows, dim] of right-padded rows, unit length.

        `ranges(name)` (NVTX when profiling) marks the forward and pooling phases.
        """
        mark = ranges or (lambda _name: nullcontext())
        with mark("forward"):
            hidden = self.forward(input_ids=input_ids, attention_mask=attention_mask)[0]
        with mark("pooling"):
            return self._pool(hidden, attention_mask)

    @torch.inference_mode()
    def encode_packed(
        self,
        input_ids: torch.Tensor,
        starts: torch.Tensor,
        longest: int,
        ranges: type[AbstractContextManager] | None = None,
    ) -> torch.Tensor:
        """Like `encode` for rows packed end to end: ids [tokens], row starts [rows + 1] (int32,
        on the ids' device), the longest row's length.
        """
        mark = ranges or (lambda _name: nullcontext())
        rows = starts.shape[0] - 1
        tokens = input_ids.shape[0]
        with mark("positions"):
            lengths = starts[1:] - starts[:-1]
            # output_size keeps repeat_interleave from reading the total back to the host.
            row_of_token = torch.repeat_interleave(
                torch.arange(rows, device=starts.device), lengths, output_size=tokens
            )
            positions = torch.arange(tokens, device=starts.device) - starts[row_of_token]
        with mark("forward"):
            packed = self.forward(
                input_ids=input_ids[None],
                position_ids=positions[None],
                cu_seq_lens_q=starts,
                cu_seq_lens_k=starts,
                max_length_q=longest,
                max_length_k=longest,
            )[0][0]
        with mark("pooling"):
            # Back to rows (an index_put with distinct indices: deterministic), so pooling is
            # the padded path's, with the same numerics.
            hidden = packed.new_zeros((rows, longest, packed.shape[-1]))
            hidden[row_of_token, positions] = packed
            mask = torch.arange(longest, device=packed.device)[None, :] < lengths.unsqueeze(1)
            return self._pool(hidden, mask.to(torch.int64))

    def _pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pooling and normalization as sentence-transformers' modules declare them."""
        if self.pooling.mode == "cls":
            pooled = hidden[:, 0].float()
        elif self.pooling.mode == "max":
            masked = hidden.masked_fill(~attention_mask.bool().unsqueeze(-1), float("-inf"))
            pooled = masked.max(dim=1).values.float()
        else:
            # A batched matmul sums over tokens with fp32 accumulation and never
            # materializes an fp32 copy of the hidden states.
            weights = attention_mask.unsqueeze(1).to(hidden.dtype)
            summed = torch.bmm(weights, hidden).squeeze(1).float()
            pooled = summed / attention_mask.sum(dim=1, keepdim=True).clamp(min=1).float()
        return F.normalize(pooled, p=2, dim=1)


_MODELS: dict[tuple[Path, str, torch.dtype, bool], EncoderModel] = {}
_MODELS_LOCK = threading.Lock()


def load_model(
    model: str, device: torch.device, dtype: torch.dtype, compiled: bool = False
) -> EncoderModel:
    """The process-wide instance for (directory, device, dtype): weights load once per process."""
    path = resolve_model_path(model).resolve()
    key = (path, str(device), dtype, compiled)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = EncoderModel(path, device, dtype, compiled)
        return _MODELS[key]
