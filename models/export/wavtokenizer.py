"""Convert a released WavTokenizer checkpoint + yaml into a tokstream model folder.

    /usr/bin/python3 models/export/wavtokenizer.py \\
        --checkpoint WavTokenizer_small_320_24k_4096.ckpt \\
        --config wavtokenizer_smalldata_frame75_3s_nq1_code4096_dim512_kmeans200_attn.yaml \\
        --out models/wavtokenizer-small-75

writes manifest.json, encoder.onnx (audio float32 [batch, samples] -> codes int64
[batch, 1, frames]) and decoder.onnx (codes int64 [batch, 1, frames] -> audio float32
[batch, frames * hop]) per docs/model-contract.md. Runs on Debian's PyTorch 1.13, offline.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import shlex
import sys
import warnings

import onnx
import torch
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quantize_int8 import quantize  # noqa: E402
from wavtokenizer_arch.checkpoint import load_wavtokenizer  # noqa: E402
from wavtokenizer_arch.encoder import receptive_field  # noqa: E402
from wavtokenizer_arch.model import WavTokenizer  # noqa: E402
from wavtokenizer_arch.modes import fold_weight_norm, set_exportable  # noqa: E402

OPSET = 17
UPSTREAM = "https://github.com/jishengpeng/WavTokenizer"
# Context defaults, in frames, chosen from the streaming agreement table in docs/models.md.
ENCODER_LEFT_FRAMES = 40
DECODER_LEFT_FRAMES = 40
DECODER_LOOKAHEAD_FRAMES = 20


class EncoderGraph(torch.nn.Module):
    def __init__(self, model: WavTokenizer):
        super().__init__()
        self.model = model

    def forward(self, audio):
        return self.model.encode(audio)


class DecoderGraph(torch.nn.Module):
    def __init__(self, model: WavTokenizer):
        super().__init__()
        self.model = model

    def forward(self, codes):
        return self.model.decode(codes)


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_graphs(model: WavTokenizer, out_dir: str) -> None:
    model = model.eval()
    fold_weight_norm(model)
    set_exportable(model, True)
    hop = model.cfg.hop_length
    # Trace with a length that is not a multiple of the hop: nothing may depend on the example length.
    audio = torch.randn(2, hop * 9 + 77) * 0.1
    with torch.no_grad(), warnings.catch_warnings():
        # Checked and harmless here: the LSTM has no h0/c0 inputs (ONNX then starts from zeros for any
        # batch); shape inference cannot type a few prim::Constant nodes; the reversed pad vectors
        # of F.pad stay tiny run-time Slices.
        warnings.filterwarnings("ignore", message=".*(batch_size other than 1|prim::Constant|steps=1 can be constant).*")
        codes = model.encode(audio)
        torch.onnx.export(
            EncoderGraph(model), (audio,), os.path.join(out_dir, "encoder.onnx"), opset_version=OPSET,
            input_names=["audio"], output_names=["codes"],
            dynamic_axes={"audio": {0: "batch", 1: "samples"}, "codes": {0: "batch", 2: "frames"}},
        )
        torch.onnx.export(
            DecoderGraph(model), (codes,), os.path.join(out_dir, "decoder.onnx"), opset_version=OPSET,
            input_names=["codes"], output_names=["audio"],
            dynamic_axes={"codes": {0: "batch", 2: "frames"}, "audio": {0: "batch", 1: "samples"}},
        )


def build_manifest(args, model: WavTokenizer, out_dir: str) -> dict:
    cfg = model.cfg
    hop = cfg.hop_length
    _, conv_right = receptive_field(cfg)
    lookahead = args.encoder_lookahead if args.encoder_lookahead is not None else conv_right
    io_codes = {"name": "codes", "dtype": "int64", "shape": ["batch", "codebooks", "frames"]}
    io_audio = {"name": "audio", "dtype": "float32", "shape": ["batch", "samples"]}
    return {
        "format": "tokstream-model/1",
        "name": args.name or os.path.basename(os.path.normpath(out_dir)),
        "version": args.version,
        "description": args.description or (
            f"WavTokenizer {cfg.sample_rate // hop} tokens/s, {cfg.codebook_size} codes, backbone dim {cfg.dim} "
            f"x {cfg.num_layers} (converted from {os.path.basename(args.checkpoint)})"),
        "sampleRate": cfg.sample_rate,
        "hopLength": hop,
        "numCodebooks": 1,
        "codebookSize": cfg.codebook_size,
        "causal": False,
        "encoder": {
            "file": "encoder.onnx", "sha256": sha256_file(os.path.join(out_dir, "encoder.onnx")),
            "input": io_audio, "output": io_codes,
            "leftContext": args.encoder_left_context if args.encoder_left_context is not None
            else ENCODER_LEFT_FRAMES * hop,
            "lookahead": lookahead,
        },
        "decoder": {
            "file": "decoder.onnx", "sha256": sha256_file(os.path.join(out_dir, "decoder.onnx")),
            "input": io_codes, "output": io_audio,
            "leftContext": args.decoder_left_context, "lookahead": args.decoder_lookahead,
        },
        "license": args.license,
        "provenance": {
            "source": f"converted from a WavTokenizer checkpoint ({UPSTREAM})",
            "checkpoint": os.path.basename(args.checkpoint),
            "checkpointSha256": sha256_file(args.checkpoint),
            "config": os.path.basename(args.config) if args.config else None,
            "configSha256": sha256_file(args.config) if args.config else None,
            "architecture": {
                "encoderStrides": cfg.ratios, "codebookDim": cfg.codebook_dim, "backboneDim": cfg.dim,
                "intermediateDim": cfg.intermediate_dim, "convNeXtLayers": cfg.num_layers,
                "posNet": cfg.pos_net, "nFft": cfg.n_fft, "bandwidthId": 0,
            },
            "exporter": "models/export/wavtokenizer.py",
            "decoderWeights": "int8 MatMul weights (quantize_int8.py)" if args.int8_decoder else "float32",
            "opset": OPSET,
            "torch": torch.__version__,
            "command": " ".join(shlex.quote(a) for a in ["/usr/bin/python3", *sys.argv]),
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="released .ckpt (PyTorch-Lightning, holds state_dict)")
    p.add_argument("--config", help="the yaml config released with the checkpoint: cross-checked against the tensor "
                   "shapes (sizes come from the shapes, so a checkpoint released without one converts too)")
    p.add_argument("--out", required=True, help="model folder to create, e.g. models/wavtokenizer-small-75")
    p.add_argument("--name", help="model name (default: the folder name, as the contract requires)")
    p.add_argument("--version", default="1.0.0")
    p.add_argument("--description")
    p.add_argument("--license", default="MIT", help="licence of the weights (released WavTokenizer weights: MIT)")
    p.add_argument("--encoder-left-context", type=int, help=f"samples (default {ENCODER_LEFT_FRAMES} frames)")
    p.add_argument("--encoder-lookahead", type=int, help="samples (default: the encoder's exact right reach)")
    p.add_argument("--decoder-left-context", type=int, default=DECODER_LEFT_FRAMES, help="frames")
    p.add_argument("--decoder-lookahead", type=int, default=DECODER_LOOKAHEAD_FRAMES, help="frames")
    p.add_argument("--int8-decoder", action="store_true",
                   help="int8 MatMul weights in the decoder: faster on CPU, no longer exact (docs/models.md)")
    args = p.parse_args(argv)

    try:
        yaml_cfg = None
        if args.config:
            with open(args.config) as f:
                yaml_cfg = yaml.safe_load(f)
        model = load_wavtokenizer(args.checkpoint, yaml_cfg)
    except (ValueError, OSError, yaml.YAMLError, RuntimeError, KeyError, EOFError, pickle.UnpicklingError) as e:
        print(f"error: cannot convert {args.checkpoint}: {e}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    export_graphs(model, args.out)
    if args.int8_decoder:
        path = os.path.join(args.out, "decoder.onnx")
        graph = onnx.load(path)
        quantize(graph)
        onnx.save(graph, path)
    manifest = build_manifest(args, model, args.out)
    if manifest["name"] != os.path.basename(os.path.normpath(args.out)):
        print("warning: the contract wants name == folder name; the server will report this model broken",
              file=sys.stderr)
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(f"wrote {args.out}: {manifest['sampleRate'] // manifest['hopLength']} tokens/s, "
          f"encoder lookahead {manifest['encoder']['lookahead']} samples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
