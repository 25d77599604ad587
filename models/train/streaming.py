"""Stateful streaming forms of the causal encoder and decoder (encoder_stream.onnx, decoder_stream.onnx).

Each CausalConv1d pads its input with `left_pad` zeros on the left. Streaming replaces that padding
with the last `left_pad` input samples of the previous call (its state), so a stream cut into chunks
of any length gives the results of one-shot processing, with no context recomputed. Zero state is
exactly zero padding: a new stream starts from zeros. The decoder's iSTFT overlap-add also carries
the two partial output blocks (and their window envelope) into the next call.

All states of a graph travel as ONE flat float32 tensor [batch, state_size], so the runtime treats
the state as opaque and batches streams by stacking rows.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from model import CausalConv1d, Decoder, Encoder, ResidualVQ, ResUnit


def stateful_convs(module):
    """Convolutions that carry state, in the order the forward pass meets them."""
    return [m for m in module.modules() if isinstance(m, CausalConv1d) and m.left_pad > 0]


class ConvStates:
    """Splits a flat state into per-convolution buffers; collects the next ones in call order."""

    def __init__(self, layout, state):
        self.pieces, offset = [], 0
        for c, p in layout:
            self.pieces.append(state[:, offset:offset + c * p].reshape(-1, c, p))
            offset += c * p
        self.pieces.reverse()
        self.next = []

    def conv(self, m, x):
        if m.left_pad == 0:
            return m.conv(x)
        full = torch.cat([self.pieces.pop(), x], -1)
        self.next.append(full[:, :, -m.left_pad:].flatten(1))
        return m.conv(full)


class StreamingEncoder(nn.Module):
    """(audio [B, n*HOP], state [B, S]) -> (codes [B, K, n], new state [B, S])."""

    def __init__(self, encoder: Encoder, vq_tables):
        super().__init__()
        self.encoder = encoder
        self.layout = [(m.conv.in_channels, m.left_pad) for m in stateful_convs(encoder)]
        self.state_size = sum(c * p for c, p in self.layout)
        self.n_tables = len(vq_tables)
        for i, t in enumerate(vq_tables):  # float64 constants, as in Codec.encode
            self.register_buffer(f"vq_table_{i}", t)

    def forward(self, audio, state):
        states = ConvStates(self.layout, state)
        conv = states.conv
        x = audio.unsqueeze(1)
        for layer in self.encoder.net:
            if isinstance(layer, CausalConv1d):
                x = conv(layer, x)
            elif isinstance(layer, ResUnit):
                x = x + conv(layer.c2, F.elu(conv(layer.c1, F.elu(x))))
            elif isinstance(layer, nn.ELU):
                x = F.elu(x)
            else:
                raise TypeError(f"no streaming rule for {type(layer).__name__}")
        tables = [getattr(self, f"vq_table_{i}") for i in range(self.n_tables)]
        return ResidualVQ.encode_with(x, tables), torch.cat(states.next, 1)


class StreamingDecoder(nn.Module):
    """(codes [B, K, n], state [B, S]) -> (audio [B, n*HOP], final [B, HOP], next state [B, S]).

    `audio` holds the overlap-add blocks this chunk completed; over a stream they are one-shot output
    delayed by one block (the first HOP samples of a stream precede one-shot output: drop them).
    `final` is the block one-shot decoding would end with if the stream ended after this chunk.
    """

    def __init__(self, codec):
        super().__init__()
        self.quantizer = codec.quantizer
        self.decoder: Decoder = codec.decoder
        head = self.decoder.head
        self.hop, self.tail = head.hop, head.n_fft - head.hop  # overlap-add spill into later blocks
        if head.n_fft % head.hop:
            raise ValueError("the streaming iSTFT needs n_fft to be a whole number of hops")
        self.span = head.n_fft // head.hop  # output blocks one frame touches
        self.layout = [(m.conv.in_channels, m.left_pad) for m in stateful_convs(self.decoder)]
        self.conv_state = sum(c * p for c, p in self.layout)
        self.state_size = self.conv_state + 2 * self.tail

    def forward(self, codes, state):
        d = self.decoder
        states = ConvStates(self.layout, state[:, :self.conv_state])
        x = states.conv(d.embed, self.quantizer.decode_codes(codes))
        x = d.norm(x.transpose(1, 2)).transpose(1, 2)
        for b in d.blocks:
            y = b.norm(states.conv(b.dw, x).transpose(1, 2))
            x = x + (b.pw2(F.gelu(b.pw1(y))) * b.gamma).transpose(1, 2)
        x = d.final_norm(x.transpose(1, 2)).transpose(1, 2)
        head = d.head
        mag, phase = head.lin(x.transpose(1, 2)).transpose(1, 2).chunk(2, dim=1)
        mag = torch.exp(mag).clamp(max=1e2)
        spec = torch.cat([mag * torch.cos(phase), mag * torch.sin(phase)], 1)
        y = self.overlap_add(torch.matmul(spec.transpose(1, 2), head.basis[:, 0]))  # [B, (n+2)*HOP]
        env = self.overlap_add(torch.ones_like(spec[:, :1]).transpose(1, 2) * head.win_sq[0])
        tail = self.conv_state
        y_tail, env_tail = state[:, tail:tail + self.tail], state[:, tail + self.tail:]
        y = torch.cat([y[:, :self.tail] + y_tail, y[:, self.tail:]], 1)
        env = torch.cat([env[:, :self.tail] + env_tail, env[:, self.tail:]], 1)
        done = y.shape[1] - self.tail
        audio = y[:, :done] / env[:, :done].clamp(min=1e-6)
        next_y, next_env = y[:, done:], env[:, done:]
        final = next_y[:, :self.hop] / next_env[:, :self.hop].clamp(min=1e-6)
        return audio, final, torch.cat(states.next + [next_y, next_env], 1)

    def overlap_add(self, frames):
        """[B, n, k*HOP] windowed frames -> [B, (n+k-1)*HOP]: frame j's k blocks land in output blocks j..j+k-1.
        The iSTFT's ConvTranspose1d as one MatMul (above) plus shifted adds: a chunk has only a few frames,
        and ConvTranspose runs one small GEMM per batch row."""
        b, n, k = frames.shape[0], frames.shape[1], self.span
        blocks = frames.reshape(b, n, k, self.hop)
        y = sum(F.pad(blocks[:, :, i], (0, 0, i, k - 1 - i)) for i in range(k))
        return y.reshape(b, (n + k - 1) * self.hop)


def streaming_encoder(codec):
    return StreamingEncoder(codec.encoder, codec.quantizer.inference_tables()).eval()


def streaming_decoder(codec):
    return StreamingDecoder(codec).eval()
