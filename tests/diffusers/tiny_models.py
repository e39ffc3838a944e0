"""Tiny random-weight diffusers pipelines, built in code and saved with ``save_pretrained``.

Nothing is downloaded: the tokenizer is a ``tokenizers`` WordLevel model wrapped in a
transformers fast tokenizer, the text encoder a two-layer (UM)T5 from a config, and the
transformer and VAE come from small configs in the spirit of diffusers' own
``get_dummy_components``. Each builder writes a directory that ``<Pipeline>.from_pretrained``
loads exactly as it would load real weights, so the engine's loading path is exercised.

Used by the diffusers engine tests and ``bench/gpu_generate.py --tiny``.
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


def _wan_transformer(channels: int, seed: int = 0) -> Any:
    import torch
    from diffusers import WanTransformer3DModel

    torch.manual_seed(seed)
    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=channels,
        out_channels=channels,
        text_dim=TEXT_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )


def _build_wan(path: Path | str, variant: str) -> Path:
    import torch
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline
    from transformers import UMT5Config, UMT5EncoderModel

    tokenizer = _tokenizer()
    torch.manual_seed(0)
    text_encoder = UMT5EncoderModel(UMT5Config(**_t5_config(len(tokenizer)))).eval()
    torch.manual_seed(0)
    extra: dict[str, Any] = {}
    if variant == "ti2v":  # 48 latent channels, patchified VAE: 16x spatial compression
        vae = AutoencoderKLWan(
            base_dim=3,
            z_dim=48,
            in_channels=12,
            out_channels=12,
            is_residual=True,
            patch_size=2,
            latents_mean=[0.0] * 48,
            latents_std=[1.0] * 48,
            dim_mult=[1, 1, 1, 1],
            num_res_blocks=1,
            scale_factor_spatial=16,
            scale_factor_temporal=4,
            temperal_downsample=[False, True, True],
        )
        transformer = _wan_transformer(48)
        extra = {"expand_timesteps": True}
    else:
        vae = AutoencoderKLWan(
            base_dim=3,
            z_dim=16,
            dim_mult=[1, 1, 1, 1],
            num_res_blocks=1,
            temperal_downsample=[False, True, True],
        )
        transformer = _wan_transformer(16)
    if variant == "a14b":  # a high-noise and a low-noise expert
        extra = {"transformer_2": _wan_transformer(16, seed=1), "boundary_ratio": 0.875}
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
    )
    pipe = WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        transformer=transformer,
        vae=vae,
        scheduler=scheduler,
        **extra,
    )
    out = Path(path)
    pipe.save_pretrained(out)
    return out


def build_tiny_wan(path: Path | str) -> Path:
    """Wan 2.1 text-to-video: UMT5 text encoder, WanTransformer3DModel, AutoencoderKLWan.

    Grid: sizes in multiples of 16 (VAE 8 x patch 2), frames 4k+1. Detected as wan2.1-1.3b
    (its transformer is narrow).
    """
    return _build_wan(path, "2.1")


def build_tiny_wan_a14b(path: Path | str) -> Path:
    """Wan 2.2 A14B: two transformers (high and low noise) split at boundary_ratio 0.875."""
    return _build_wan(path, "a14b")


def build_tiny_wan_ti2v(path: Path | str) -> Path:
    """Wan 2.2 TI2V 5B: the 48-channel VAE at 16x spatial compression, expand_timesteps."""
    return _build_wan(path, "ti2v")


def build_tiny_ltx(
    path: Path | str, *, timestep_conditioning: bool = False, dynamic_shifting: bool = True
) -> Path:
    """LTX-Video: T5 text encoder, LTXVideoTransformer3DModel, AutoencoderKLLTXVideo.

    The VAE compresses 8x in space and time (the real one: 32x and 8x), so 8k+1 frames and
    multiples of 32 fit it as they fit the real model. ``timestep_conditioning``: the
    timestep-aware decoder of LTX-Video 0.9.1+; ``dynamic_shifting=False``: the fixed schedule
    the 0.9.7+ checkpoints ship for LTXConditionPipeline.
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
        num_layers=2,  # FirstBlockCache needs a block after the first
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
        timestep_conditioning=timestep_conditioning,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(
        use_dynamic_shifting=dynamic_shifting,
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


def build_tiny_ltx_upsampler(path: Path | str) -> Path:
    """An LTXLatentUpsamplePipeline for :func:`build_tiny_ltx`'s latents (8 channels), saved
    without a VAE as the published spatial upscalers are (the engine passes the model's)."""
    import torch
    from diffusers import LTXLatentUpsamplePipeline
    from diffusers.pipelines.ltx.modeling_latent_upsampler import LTXLatentUpsamplerModel

    torch.manual_seed(0)
    model = LTXLatentUpsamplerModel(in_channels=8, mid_channels=32, num_blocks_per_stage=1)
    out = Path(path)
    LTXLatentUpsamplePipeline(vae=None, latent_upsampler=model).save_pretrained(out)
    return out


def build_tiny_cogvideox(path: Path | str, *, rotary: bool = False) -> Path:
    """CogVideoX: T5, CogVideoXTransformer3DModel, AutoencoderKLCogVideoX (8x space, 4x time).

    ``rotary``: 5B-style rotary position embeddings (detected as cogvideox-5b, else -2b).
    """
    import torch
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXPipeline,
        CogVideoXTransformer3DModel,
        DDIMScheduler,
    )
    from transformers import T5Config, T5EncoderModel

    tokenizer = _tokenizer()
    torch.manual_seed(0)
    text_encoder = T5EncoderModel(T5Config(**_t5_config(len(tokenizer)))).eval()
    torch.manual_seed(0)
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=4,
        attention_head_dim=8,
        in_channels=4,
        out_channels=4,
        time_embed_dim=2,
        text_embed_dim=TEXT_DIM,
        num_layers=2,  # FirstBlockCache needs a block after the first
        sample_width=4,
        sample_height=4,
        sample_frames=9,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=16,
        use_rotary_positional_embeddings=rotary,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    pipe = CogVideoXPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        transformer=transformer,
        vae=vae,
        scheduler=DDIMScheduler(),
    )
    out = Path(path)
    pipe.save_pretrained(out)
    return out


def build_tiny_hunyuan(path: Path | str) -> Path:
    """HunyuanVideo: Llama and CLIP text encoders, guidance-embedded transformer, 3D VAE."""
    import torch
    from diffusers import (
        AutoencoderKLHunyuanVideo,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideoPipeline,
        HunyuanVideoTransformer3DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, LlamaConfig, LlamaModel

    tokenizer = _tokenizer()
    common = {"intermediate_size": 37, "num_attention_heads": 4, "num_hidden_layers": 2}
    common |= {"vocab_size": len(tokenizer), "pad_token_id": 0, "eos_token_id": 1}
    torch.manual_seed(0)
    text_encoder = LlamaModel(LlamaConfig(hidden_size=16, bos_token_id=2, **common)).eval()
    torch.manual_seed(0)
    clip = CLIPTextConfig(hidden_size=8, projection_dim=32, bos_token_id=2, **common)
    text_encoder_2 = CLIPTextModel(clip).eval()
    torch.manual_seed(0)
    transformer = HunyuanVideoTransformer3DModel(
        in_channels=4,
        out_channels=4,
        num_attention_heads=2,
        attention_head_dim=10,
        num_layers=1,
        num_single_layers=1,
        num_refiner_layers=1,
        patch_size=1,
        patch_size_t=1,
        guidance_embeds=True,
        text_embed_dim=16,
        pooled_projection_dim=8,
        rope_axes_dim=(2, 4, 4),
    )
    torch.manual_seed(0)
    vae = AutoencoderKLHunyuanVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        down_block_types=("HunyuanVideoDownBlock3D",) * 4,
        up_block_types=("HunyuanVideoUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        layers_per_block=1,
        act_fn="silu",
        norm_num_groups=4,
        scaling_factor=0.476986,
        spatial_compression_ratio=8,
        temporal_compression_ratio=4,
        mid_block_add_attention=True,
    )
    pipe = HunyuanVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        tokenizer_2=_tokenizer(),
        text_encoder_2=text_encoder_2,
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
    )
    out = Path(path)
    pipe.save_pretrained(out)
    return out


BUILDERS = {
    "wan": build_tiny_wan,
    "wan-a14b": build_tiny_wan_a14b,
    "wan-ti2v": build_tiny_wan_ti2v,
    "ltx": build_tiny_ltx,
    "cogvideox": build_tiny_cogvideox,
    "hunyuan": build_tiny_hunyuan,
}


def build_tiny_wan_lora(weights: Path | str, path: Path | str, seed: int = 0) -> Path:
    """A random LoRA (rank 2 on the attention projections) for a tiny Wan transformer,
    saved as diffusers saves one: ``pytorch_lora_weights.safetensors`` in ``path``."""
    import torch
    from diffusers import WanPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    pipe = WanPipeline.from_pretrained(weights)
    torch.manual_seed(seed)
    config = LoraConfig(
        r=2, lora_alpha=2, target_modules=["to_q", "to_k", "to_v"], init_lora_weights=False
    )
    pipe.transformer.add_adapter(config)
    layers = get_peft_model_state_dict(pipe.transformer)
    WanPipeline.save_lora_weights(path, transformer_lora_layers=layers)
    return Path(path)
