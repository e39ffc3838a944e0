"""Tiny random-weight diffusers pipelines, built in code and saved with ``save_pretrained``.

Nothing is downloaded: the tokenizer is a ``tokenizers`` WordLevel model wrapped in a
transformers fast tokenizer, the text encoder a two-layer (UM)T5 from a config, and the
transformer and VAE come from small configs in the spirit of diffusers' own
``get_dummy_components``. Each builder writes a directory that ``<Pipeline>.from_pretrained``
loads exactly as it would load real weights, so the engine's loading path is exercised.

Used by the diffusers engine tests, the end-to-end suite and ``bench/gpu_generate.py --tiny``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TEXT_DIM = 32  # d_model of the tiny text encoder == the transformer's text/caption width
WORDS = (  # the tokenizer's vocabulary; other words map to <unk>
    "a cat dog fox bird walks runs jumps flies on in the of and with at beach forest city night"
    " day rain snow sun red blue green small big slow fast camera close up wide shot video"
)


def _tokenizer() -> Any:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in WORDS.split(" "):
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def _t5_config(vocab_size: int) -> dict[str, Any]:
    return {
        "vocab_size": vocab_size,
        "d_model": TEXT_DIM,
        "d_kv": 8,
        "d_ff": 64,
        "num_layers": 2,
        "num_heads": 4,
        "relative_attention_num_buckets": 8,
    }


def build_tiny_wan(path: Path | str) -> Path:
    """Wan 2.1 text-to-video: UMT5 text encoder, WanTransformer3DModel, AutoencoderKLWan.

    Grid: sizes in multiples of 16 (VAE 8 x patch 2), frames 4k+1.
    """
    import torch
    from diffusers import (
        AutoencoderKLWan,
        UniPCMultistepScheduler,
        WanPipeline,
        WanTransformer3DModel,
    )
    from transformers import UMT5Config, UMT5EncoderModel

    tokenizer = _tokenizer()
    torch.manual_seed(0)
    text_encoder = UMT5EncoderModel(UMT5Config(**_t5_config(len(tokenizer)))).eval()
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=TEXT_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
    )
    pipe = WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        transformer=transformer,
        vae=vae,
        scheduler=scheduler,
    )
    out = Path(path)
    pipe.save_pretrained(out)
    return out


def build_tiny_ltx(path: Path | str) -> Path:
    """LTX-Video: T5 text encoder, LTXVideoTransformer3DModel, AutoencoderKLLTXVideo.

    The VAE compresses 8x in space and time (the real one: 32x and 8x), so 8k+1 frames and
    multiples of 32 fit it as they fit the real model.
    """
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )
    from transformers import T5Config, T5EncoderModel

    tokenizer = _tokenizer()
    torch.manual_seed(0)
    text_encoder = T5EncoderModel(T5Config(**_t5_config(len(tokenizer)))).eval()
    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=TEXT_DIM,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        spatio_temporal_scaling=(True, True, True, False),
        decoder_spatio_temporal_scaling=(True, True, True, False),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(
        use_dynamic_shifting=True,
        base_shift=0.95,
        max_shift=2.05,
        base_image_seq_len=1024,
        max_image_seq_len=4096,
    )
    pipe = LTXPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        transformer=transformer,
        vae=vae,
        scheduler=scheduler,
    )
    out = Path(path)
    pipe.save_pretrained(out)
    return out


BUILDERS = {"wan": build_tiny_wan, "ltx": build_tiny_ltx}
