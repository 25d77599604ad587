"""Export the codec to ONNX (opset 17) and write models/<name>/manifest.json.

  /usr/bin/python3 models/train/export.py --checkpoint models/train/runs/main/final.npz --out models/default \
      --version 1.0.0 --train-provenance models/train/runs/main/provenance.json --command "..."
  /usr/bin/python3 models/train/export.py --untrained --out models/default   # random init, for plumbing only
"""
import argparse
import hashlib
import json
import os
import sys

import onnx
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkpoint import load_codec  # noqa: E402
from model import CODEBOOK_SIZE, HOP, NUM_CODEBOOKS, SAMPLE_RATE, ResidualVQ, build_codec  # noqa: E402
from streaming import streaming_decoder, streaming_encoder  # noqa: E402

OPSET = 17


class EncoderGraph(nn.Module):
    def __init__(self, codec):
        super().__init__()
        self.encoder = codec.encoder
        self.tables = codec.quantizer.inference_tables()  # float64 constants, as in Codec.encode
        for i, t in enumerate(self.tables):
            self.register_buffer(f"vq_table_{i}", t)

    def forward(self, audio):
        tables = [getattr(self, f"vq_table_{i}") for i in range(len(self.tables))]
        return ResidualVQ.encode_with(self.encoder(audio), tables)


class DecoderGraph(nn.Module):
    def __init__(self, codec):
        super().__init__()
        self.codec = codec

    def forward(self, codes):
        return self.codec.decoder(self.codec.quantizer.decode_codes(codes))


def encoder_context(codec):
    """Measured receptive field of one latent frame, in samples: (left of its block, right of its block)."""
    frames, k = 96, 80
    audio = torch.randn(1, frames * HOP, dtype=torch.float64, requires_grad=True)
    enc = codec.encoder.double()
    enc(audio)[0, :, k].sum().backward()
    codec.encoder.float()
    nz = torch.nonzero(audio.grad[0]).flatten()
    return k * HOP - int(nz.min()), int(nz.max()) - ((k + 1) * HOP - 1)


def decoder_context(codec):
    """Measured code frames that influence output block k: (before k, after k)."""
    frames, k = 96, 70
    dec = codec.decoder.double()
    latent = torch.randn(1, dec.embed.conv.in_channels, frames, dtype=torch.float64, requires_grad=True)
    dec(latent)[0, k * HOP:(k + 1) * HOP].sum().backward()
    codec.decoder.float()
    nz = torch.nonzero(latent.grad[0].abs().sum(0)).flatten()
    return k - int(nz.min()), int(nz.max()) - k


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def share_weights(graph_path, base_path, min_bytes=1024):
    """Points the graph's large initializers at the identical bytes inside `base_path` (ONNX external
    data: location, offset, length), so a streaming graph adds no second copy of the weights. The offset
    is wherever those exact bytes occur in the base file, which is correct by construction."""
    model = onnx.load(graph_path)
    base = open(base_path, "rb").read()
    name = os.path.basename(base_path)
    for t in model.graph.initializer:
        offset = base.find(t.raw_data) if len(t.raw_data) >= min_bytes else -1
        if offset < 0:
            continue
        length = len(t.raw_data)
        t.ClearField("raw_data")
        t.data_location = onnx.TensorProto.EXTERNAL
        for k, v in (("location", name), ("offset", str(offset)), ("length", str(length))):
            t.external_data.add(key=k, value=v)
    onnx.save(model, graph_path)


def export(codec, out_dir):
    codec.eval()
    os.makedirs(out_dir, exist_ok=True)
    enc_path, dec_path = os.path.join(out_dir, "encoder.onnx"), os.path.join(out_dir, "decoder.onnx")
    stream_path = os.path.join(out_dir, "encoder_stream.onnx")
    dec_stream_path = os.path.join(out_dir, "decoder_stream.onnx")
    with torch.no_grad():
        torch.onnx.export(EncoderGraph(codec), (torch.zeros(1, 10 * HOP),), enc_path, opset_version=OPSET,
                          input_names=["audio"], output_names=["codes"],
                          dynamic_axes={"audio": {0: "batch", 1: "samples"}, "codes": {0: "batch", 2: "frames"}})
        codes = torch.zeros(1, NUM_CODEBOOKS, 10, dtype=torch.long)
        torch.onnx.export(DecoderGraph(codec), (codes,), dec_path, opset_version=OPSET,
                          input_names=["codes"], output_names=["audio"],
                          dynamic_axes={"codes": {0: "batch", 1: "codebooks", 2: "frames"},
                                        "audio": {0: "batch", 1: "samples"}})
        stream = streaming_encoder(codec)
        torch.onnx.export(stream, (torch.zeros(1, 6 * HOP), torch.zeros(1, stream.state_size)), stream_path,
                          opset_version=OPSET, input_names=["audio", "state"], output_names=["codes", "next_state"],
                          dynamic_axes={"audio": {0: "batch", 1: "samples"}, "state": {0: "batch"},
                                        "codes": {0: "batch", 2: "frames"}, "next_state": {0: "batch"}})
        dstream = streaming_decoder(codec)
        torch.onnx.export(dstream, (codes, torch.zeros(1, dstream.state_size)), dec_stream_path, opset_version=OPSET,
                          input_names=["codes", "state"], output_names=["audio", "final", "next_state"],
                          dynamic_axes={"codes": {0: "batch", 1: "codebooks", 2: "frames"}, "state": {0: "batch"},
                                        "audio": {0: "batch", 1: "samples"}, "final": {0: "batch"},
                                        "next_state": {0: "batch"}})
    share_weights(stream_path, enc_path)
    share_weights(dec_stream_path, dec_path)
    return enc_path, dec_path, (stream_path, stream.state_size), (dec_stream_path, dstream.state_size)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", help="state dict (.npz or .pt) written by train.py")
    ap.add_argument("--untrained", action="store_true", help="export a seeded random init")
    ap.add_argument("--out", default="models/default")
    ap.add_argument("--name", default="default")
    ap.add_argument("--version", default="1.0.0")
    ap.add_argument("--train-provenance", help="provenance.json written by train.py for these weights")
    ap.add_argument("--command", help="the command(s) that produced the weights, for manifest.provenance")
    args = ap.parse_args()
    if not args.untrained and not args.checkpoint:
        ap.error("give --checkpoint or --untrained")
    torch.set_num_threads(1)
    codec = build_codec(0) if args.untrained else load_codec(args.checkpoint)

    enc_left, enc_right = encoder_context(codec)
    dec_left, dec_right = decoder_context(codec)
    if enc_right != 0:
        raise SystemExit(f"encoder is not causal: look-ahead {enc_right} samples")
    enc_path, dec_path, (stream_path, state_size), (dec_stream_path, dec_state_size) = export(codec, args.out)

    provenance = {"source": "trained by models/train (this repository)"}
    if args.untrained:
        provenance = {"source": "UNTRAINED random initialisation (seed 0) of models/train/model.py; plumbing only",
                      "command": "/usr/bin/python3 models/train/export.py --untrained --out models/default"}
    if args.train_provenance:
        with open(args.train_provenance) as f:
            p = json.load(f)
        provenance["data"] = "Debian packages only: espeak-ng speech, ktuberling-data words, openttd-openmsx MIDI " \
                             "rendered by fluidsynth (models/train/prepare_data.py)"
        provenance["training"] = (f"{p['steps']} steps x batch {p['batch']} x {p['segment_seconds']} s crops "
                                  f"({p['audio_hours_seen']} h of audio seen) in {p['train_seconds']} s wall clock "
                                  f"on {p['device']}, torch {p['torch']}, seed {p['seed']}")
    if args.command:
        provenance["command"] = args.command
    provenance["export"] = f"models/train/export.py with torch {torch.__version__}, ONNX opset {OPSET}"
    manifest = {
        "format": "tokstream-model/1",
        "name": args.name,
        "version": "0.0.0-untrained" if args.untrained else args.version,
        "description": "tokstream default codec: causal SEANet-style encoder, 8x1024 factorised residual VQ "
                       "(any leading 1..8 codebooks decode, 0.75-6 kbps), causal ConvNeXt decoder with iSTFT head",
        "sampleRate": SAMPLE_RATE,
        "hopLength": HOP,
        "numCodebooks": NUM_CODEBOOKS,
        "codebookSize": CODEBOOK_SIZE,
        "causal": True,
        "encoder": {
            "file": "encoder.onnx", "sha256": sha256(enc_path),
            "input": {"name": "audio", "dtype": "float32", "shape": ["batch", "samples"]},
            "output": {"name": "codes", "dtype": "int64", "shape": ["batch", "codebooks", "frames"]},
            "leftContext": enc_left, "lookahead": 0,
            "streaming": {
                "file": "encoder_stream.onnx", "sha256": sha256(stream_path),
                "input": {"name": "audio", "dtype": "float32", "shape": ["batch", "samples"]},
                "output": {"name": "codes", "dtype": "int64", "shape": ["batch", "codebooks", "frames"]},
                "stateInput": {"name": "state", "dtype": "float32", "shape": ["batch", state_size]},
                "stateOutput": {"name": "next_state", "dtype": "float32", "shape": ["batch", state_size]},
                "chunkMultiple": HOP,
            },
        },
        "decoder": {
            "file": "decoder.onnx", "sha256": sha256(dec_path),
            "input": {"name": "codes", "dtype": "int64", "shape": ["batch", "codebooks", "frames"]},
            "output": {"name": "audio", "dtype": "float32", "shape": ["batch", "samples"]},
            "leftContext": dec_left, "lookahead": dec_right,
            "streaming": {
                "file": "decoder_stream.onnx", "sha256": sha256(dec_stream_path),
                "input": {"name": "codes", "dtype": "int64", "shape": ["batch", "codebooks", "frames"]},
                "output": {"name": "audio", "dtype": "float32", "shape": ["batch", "samples"]},
                "finalOutput": {"name": "final", "dtype": "float32", "shape": ["batch", HOP]},
                "stateInput": {"name": "state", "dtype": "float32", "shape": ["batch", dec_state_size]},
                "stateOutput": {"name": "next_state", "dtype": "float32", "shape": ["batch", dec_state_size]},
                "chunkMultiple": 1,
                "delaySamples": HOP,
            },
        },
        "license": "MIT",
        "provenance": provenance,
    }
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    marker = os.path.join(args.out, ".untrained")
    if args.untrained:
        open(marker, "w").write("random-init export; replaced by the trained model\n")
    elif os.path.exists(marker):
        os.remove(marker)
    sizes = {p: os.path.getsize(p) for p in (enc_path, dec_path, stream_path, dec_stream_path)}
    print(json.dumps({"encoder_context": [enc_left, enc_right], "decoder_context": [dec_left, dec_right],
                      "bytes": sizes, "total_mb": round(sum(sizes.values()) / 1e6, 2)}))


if __name__ == "__main__":
    main()
