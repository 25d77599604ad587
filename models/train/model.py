"""The default tokstream codec: causal SEANet-like encoder, factorised residual VQ,
Vocos-style causal ConvNeXt decoder with an iSTFT head written in exportable ops.

Runs unchanged on Debian's torch 1.13 (export, CPU training) and on newer torch (GPU training).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

SAMPLE_RATE = 24000
HOP = 320
NUM_CODEBOOKS = 8
CODEBOOK_SIZE = 1024
CODEBOOK_DIM = 8  # factorised codes (low-dim lookup) keep VQ cheap and codebook usage high
LATENT_DIM = 256
N_FFT = 3 * HOP  # window spans 3 frames: one frame of look-ahead in the iSTFT overlap-add


class CausalConv1d(nn.Module):
    """Conv1d padded on the left only: output t sees inputs up to the end of its own stride block."""

    def __init__(self, cin, cout, kernel, stride=1, dilation=1, groups=1, bias=False):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, kernel, stride=stride, dilation=dilation, groups=groups, bias=bias)
        self.left_pad = (kernel - 1) * dilation + 1 - stride

    def forward(self, x):
        return self.conv(F.pad(x, (self.left_pad, 0)))


class ResUnit(nn.Module):
    def __init__(self, ch, dilation):
        super().__init__()
        self.c1 = CausalConv1d(ch, ch // 2, 3, dilation=dilation)
        self.c2 = CausalConv1d(ch // 2, ch, 1)

    def forward(self, x):
        return x + self.c2(F.elu(self.c1(F.elu(x))))


class Encoder(nn.Module):
    """Bias-free convolutions and ELU (f(0)=0): zero audio gives exactly zero activations, so
    zero padding at every layer equals prepending silence, and windowed codes equal one-shot codes."""

    STRIDES = (2, 4, 5, 8)

    def __init__(self, base=16, latent=LATENT_DIM):
        super().__init__()
        layers = [CausalConv1d(1, base, 7)]
        ch = base
        for i, s in enumerate(self.STRIDES):
            layers.append(ResUnit(ch, 1))
            if i >= 2:  # extra context where the rate is low and channels are cheap
                layers.append(ResUnit(ch, 3))
            layers += [nn.ELU(), CausalConv1d(ch, ch * 2, 2 * s, stride=s)]
            ch *= 2
        layers += [ResUnit(ch, 1), ResUnit(ch, 3), nn.ELU(), CausalConv1d(ch, latent, 3)]
        self.net = nn.Sequential(*layers)

    def forward(self, audio):  # [B, S] -> [B, D, S / HOP]
        return self.net(audio.unsqueeze(1))


class FactorisedVQ(nn.Module):
    """One codebook: project to CODEBOOK_DIM, nearest entry by cosine similarity, project back."""

    def __init__(self, dim=LATENT_DIM):
        super().__init__()
        self.in_proj = nn.Linear(dim, CODEBOOK_DIM)
        self.out_proj = nn.Linear(CODEBOOK_DIM, dim)
        self.codebook = nn.Parameter(torch.randn(CODEBOOK_SIZE, CODEBOOK_DIM))

    def scoring_table64(self):
        """Unit codebook minus its mean direction, in float64. argmax over j of low . unit_j is unchanged by
        subtracting a vector common to all j, but the scores lose their large common part (entries of later
        codebooks are nearly parallel), so rounding decides far fewer near-ties."""
        unit = F.normalize(self.codebook.detach().double(), dim=-1)
        return unit - unit.mean(0, keepdim=True)

    def indices(self, low):  # low: [..., CODEBOOK_DIM] -> argmax of cosine similarity
        return torch.matmul(low, self.scoring_table64().to(low.dtype).t()).argmax(-1)


class ResidualVQ(nn.Module):
    def __init__(self, dim=LATENT_DIM, n_q=NUM_CODEBOOKS):
        super().__init__()
        self.layers = nn.ModuleList([FactorisedVQ(dim) for _ in range(n_q)])

    def inference_tables(self):
        """Per codebook, in float64: in_proj weight and bias, scoring table, codebook, out_proj weight and bias.
        Inference runs the residual chain in float64 (cheap: 8-dim codes) so that rounding inside the chain
        does not flip near-tied choices between PyTorch and exported graphs."""
        tables = []
        for q in self.layers:
            tables += [q.in_proj.weight.detach().double(), q.in_proj.bias.detach().double(),
                       q.scoring_table64(), q.codebook.detach().double(),
                       q.out_proj.weight.detach().double(), q.out_proj.bias.detach().double()]
        return tables

    @staticmethod
    def encode_with(z, tables):  # z [B, D, T] -> codes [B, n_q, T] int64
        residual = z.transpose(1, 2).double()
        codes = []
        for i in range(0, len(tables), 6):
            w_in, b_in, score, book, w_out, b_out = tables[i:i + 6]
            idx = torch.matmul(F.linear(residual, w_in, b_in), score.t()).argmax(-1)
            residual = residual - F.linear(F.embedding(idx, book), w_out, b_out)
            codes.append(idx)
        return torch.stack(codes, 1)

    def encode(self, z):
        return self.encode_with(z, self.inference_tables())

    def forward(self, z, n_q):
        """Training pass. n_q: [B] number of codebooks kept per item (quantizer dropout).
        Returns quantised latent, codes, codebook loss, commitment loss, per-layer low-dim inputs."""
        residual = z.transpose(1, 2)
        out = torch.zeros_like(residual)
        cb_loss = z.new_zeros(())
        commit_loss = z.new_zeros(())
        codes, lows = [], []
        for i, q in enumerate(self.layers):
            keep = (n_q > i).float().view(-1, 1, 1)
            low = q.in_proj(residual)
            idx = q.indices(low.detach())
            chosen = F.embedding(idx, q.codebook)
            denom = keep.sum().clamp(min=1.0) * low.shape[1] * low.shape[2]
            cb_loss = cb_loss + (keep * (chosen - low.detach()) ** 2).sum() / denom
            commit_loss = commit_loss + (keep * (low - chosen.detach()) ** 2).sum() / denom
            st = low + (chosen - low).detach()  # straight-through
            contrib = q.out_proj(st)
            out = out + keep * contrib
            residual = residual - contrib
            codes.append(idx)
            lows.append(low.detach())
        return out.transpose(1, 2), torch.stack(codes, 1), cb_loss, commit_loss, lows

    def decode_codes(self, codes):
        """codes [B, K, T] with any 1 <= K <= n_q -> latent [B, D, T]; sums the first K codebooks.
        Written with a K-sliced stacked table so that K stays dynamic in the exported graph."""
        k = codes.shape[1]
        table = torch.cat([q.codebook for q in self.layers], 0)  # [n_q*size, cdim]
        offsets = torch.arange(len(self.layers), device=codes.device) * CODEBOOK_SIZE
        low = F.embedding(codes + offsets[:k].view(1, -1, 1), table)  # [B, K, T, cdim]
        w = torch.stack([q.out_proj.weight.t() for q in self.layers], 0)[:k]  # [K, cdim, D]
        b = torch.stack([q.out_proj.bias for q in self.layers], 0)[:k].sum(0)  # [D]
        latent = torch.matmul(low, w.unsqueeze(0)).sum(1) + b  # [B, T, D]
        return latent.transpose(1, 2)


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim, hidden, kernel, layer_scale):
        super().__init__()
        self.dw = CausalConv1d(dim, dim, kernel, groups=dim, bias=True)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1 = nn.Linear(dim, hidden)
        self.pw2 = nn.Linear(hidden, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x):  # [B, D, T]
        y = self.norm(self.dw(x).transpose(1, 2))
        y = self.pw2(F.gelu(self.pw1(y))) * self.gamma
        return x + y.transpose(1, 2)


class ISTFTHead(nn.Module):
    """Linear -> log-magnitude and phase -> inverse real DFT as ConvTranspose1d over a fixed basis
    (overlap-add), divided by the overlap-added squared window. No complex ops, so it exports.
    Frame j's window covers samples [(j-1)*HOP, (j+2)*HOP): block k hears frames k-1, k, k+1."""

    def __init__(self, dim, n_fft=N_FFT, hop=HOP):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        bins = n_fft // 2 + 1
        self.lin = nn.Linear(dim, 2 * bins)
        n = torch.arange(n_fft, dtype=torch.float64)
        k = torch.arange(bins, dtype=torch.float64)
        window = 0.5 - 0.5 * torch.cos(2 * math.pi * n / n_fft)  # periodic Hann
        ang = 2 * math.pi * k.view(-1, 1) * n.view(1, -1) / n_fft
        scale = torch.full((bins, 1), 2.0, dtype=torch.float64)
        scale[0] = scale[-1] = 1.0
        cos_b = scale * torch.cos(ang) / n_fft * window
        sin_b = -scale * torch.sin(ang) / n_fft * window
        self.register_buffer("basis", torch.cat([cos_b, sin_b], 0).unsqueeze(1).float())  # [2*bins, 1, n_fft]
        self.register_buffer("win_sq", (window ** 2).view(1, 1, -1).float())

    def forward(self, x):  # [B, D, T] -> [B, T*HOP]
        mag, phase = self.lin(x.transpose(1, 2)).transpose(1, 2).chunk(2, dim=1)
        mag = torch.exp(mag).clamp(max=1e2)
        spec = torch.cat([mag * torch.cos(phase), mag * torch.sin(phase)], 1)
        y = F.conv_transpose1d(spec, self.basis, stride=self.hop)
        env = F.conv_transpose1d(torch.ones_like(spec[:1, :1]), self.win_sq, stride=self.hop)
        y = y / env.clamp(min=1e-6)
        return y[:, 0, self.hop:-(self.n_fft - 2 * self.hop)]


class Decoder(nn.Module):
    def __init__(self, latent=LATENT_DIM, dim=256, hidden=672, blocks=8, kernel=5):
        super().__init__()
        self.embed = CausalConv1d(latent, dim, kernel, bias=True)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.blocks = nn.ModuleList([ConvNeXtBlock(dim, hidden, kernel, 1.0 / blocks) for _ in range(blocks)])
        self.final_norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = ISTFTHead(dim)

    def forward(self, latent):  # [B, D, T] -> [B, T*HOP]
        x = self.norm(self.embed(latent).transpose(1, 2)).transpose(1, 2)
        for b in self.blocks:
            x = b(x)
        x = self.final_norm(x.transpose(1, 2)).transpose(1, 2)
        return self.head(x)


class Codec(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.quantizer = ResidualVQ()
        self.decoder = Decoder()

    @torch.no_grad()
    def encode(self, audio):  # [B, S] float -> [B, 8, S/HOP] int64
        return self.quantizer.encode(self.encoder(audio))

    @torch.no_grad()
    def decode(self, codes):  # [B, K, T] int64 -> [B, T*HOP]
        return self.decoder(self.quantizer.decode_codes(codes))


def build_codec(seed=0):
    torch.manual_seed(seed)
    return Codec()
