"""Objective audio-quality metrics for codec evaluation (numpy/scipy only).

STOI follows Taal, Hendriks, Heusdens, Jensen, "An Algorithm for Intelligibility
Prediction of Time-Frequency Weighted Noisy Speech", IEEE TASLP 19(7), 2011:
10 kHz, 256-sample Hann frames with 50 % overlap, 512-point FFT, 15 one-third
octave bands from 150 Hz, 30-frame (384 ms) segments, clipping at a -15 dB SDR
lower bound, and removal of frames more than 40 dB below the loudest clean frame.
"""
from math import gcd

import numpy as np
from scipy.signal import resample_poly

STOI_RATE = 10000
STOI_FRAME = 256
STOI_NFFT = 512
STOI_BANDS = 15
STOI_MIN_FREQ = 150.0
STOI_SEGMENT = 30
STOI_BETA_DB = -15.0
STOI_DYN_RANGE_DB = 40.0

_EPS = np.finfo(np.float64).eps


def resample(x, rate_in, rate_out):
    """Polyphase resampling (Kaiser-windowed FIR) between integer rates."""
    x = np.asarray(x, dtype=np.float64)
    if rate_in == rate_out:
        return x
    g = gcd(int(rate_in), int(rate_out))
    return resample_poly(x, int(rate_out) // g, int(rate_in) // g)


def _hann(n):
    # MATLAB's hanning(n): symmetric, without the zero end points (as in Taal's code).
    return np.hanning(n + 2)[1:-1]


def _frame_starts(length, frame, hop):
    # Frames that fit entirely, as in Taal's 1:K:(length(x)-N).
    return np.arange(0, max(length - frame, 0), hop)


def _third_octave_matrix(rate, nfft, bands, min_freq):
    freqs = np.linspace(0, rate, nfft + 1)[: nfft // 2 + 1]
    k = np.arange(bands)
    lower = min_freq * 2.0 ** ((2 * k - 1) / 6)
    upper = min_freq * 2.0 ** ((2 * k + 1) / 6)
    matrix = np.zeros((bands, freqs.size))
    for band in range(bands):
        lo = int(np.argmin(np.abs(freqs - lower[band])))
        hi = int(np.argmin(np.abs(freqs - upper[band])))
        matrix[band, lo:hi] = 1.0
    return matrix


def _remove_silent_frames(clean, degraded, dyn_range, frame, hop):
    """Drop frames whose clean energy is more than dyn_range dB below the loudest, then overlap-add."""
    window = _hann(frame)
    starts = _frame_starts(clean.size, frame, hop)
    if starts.size == 0:
        raise ValueError("signal shorter than one STOI frame")
    idx = starts[:, None] + np.arange(frame)[None, :]
    clean_frames = clean[idx] * window
    degraded_frames = degraded[idx] * window
    energy_db = 20 * np.log10(np.linalg.norm(clean_frames, axis=1) / np.sqrt(frame) + _EPS)
    keep = energy_db > energy_db.max() - dyn_range
    clean_frames = clean_frames[keep]
    degraded_frames = degraded_frames[keep]
    n = clean_frames.shape[0]
    out_len = (n - 1) * hop + frame
    clean_out = np.zeros(out_len)
    degraded_out = np.zeros(out_len)
    for i in range(n):
        clean_out[i * hop: i * hop + frame] += clean_frames[i]
        degraded_out[i * hop: i * hop + frame] += degraded_frames[i]
    return clean_out, degraded_out


def _stft_magnitude_frames(x, frame, hop, nfft):
    window = _hann(frame)
    starts = _frame_starts(x.size, frame, hop)
    idx = starts[:, None] + np.arange(frame)[None, :]
    return np.abs(np.fft.rfft(x[idx] * window, n=nfft, axis=1))  # [frames, bins]


def stoi(clean, degraded, rate):
    """Short-Time Objective Intelligibility, roughly in [0, 1] (1 = identical envelopes)."""
    clean = np.asarray(clean, dtype=np.float64).ravel()
    degraded = np.asarray(degraded, dtype=np.float64).ravel()
    if clean.size != degraded.size:
        raise ValueError(f"length mismatch: {clean.size} vs {degraded.size}")
    clean = resample(clean, rate, STOI_RATE)
    degraded = resample(degraded, rate, STOI_RATE)
    hop = STOI_FRAME // 2
    clean, degraded = _remove_silent_frames(clean, degraded, STOI_DYN_RANGE_DB, STOI_FRAME, hop)
    bands = _third_octave_matrix(STOI_RATE, STOI_NFFT, STOI_BANDS, STOI_MIN_FREQ)
    clean_env = np.sqrt(bands @ (_stft_magnitude_frames(clean, STOI_FRAME, hop, STOI_NFFT) ** 2).T)
    degraded_env = np.sqrt(bands @ (_stft_magnitude_frames(degraded, STOI_FRAME, hop, STOI_NFFT) ** 2).T)
    frames = clean_env.shape[1]
    if frames < STOI_SEGMENT:
        raise ValueError("fewer than 30 non-silent frames (384 ms) for STOI")
    # All 384 ms segments, shifted by one frame: [segments, bands, 30].
    idx = np.arange(STOI_SEGMENT - 1, frames)[:, None] - np.arange(STOI_SEGMENT - 1, -1, -1)[None, :]
    x = np.transpose(clean_env[:, idx], (1, 0, 2))
    y = np.transpose(degraded_env[:, idx], (1, 0, 2))
    # Normalise the degraded envelope to the clean energy, then clip at the SDR lower bound.
    alpha = np.linalg.norm(x, axis=2, keepdims=True) / (np.linalg.norm(y, axis=2, keepdims=True) + _EPS)
    clip = 1 + 10 ** (-STOI_BETA_DB / 20)
    y = np.minimum(alpha * y, clip * x)
    x = x - x.mean(axis=2, keepdims=True)
    y = y - y.mean(axis=2, keepdims=True)
    corr = (x * y).sum(axis=2) / (np.linalg.norm(x, axis=2) * np.linalg.norm(y, axis=2) + _EPS)
    return float(corr.mean())


def si_sdr(reference, estimate):
    """Scale-invariant SDR in dB (Le Roux et al. 2019), signals made zero-mean first."""
    reference = np.asarray(reference, dtype=np.float64).ravel()
    estimate = np.asarray(estimate, dtype=np.float64).ravel()
    if reference.size != estimate.size:
        raise ValueError(f"length mismatch: {reference.size} vs {estimate.size}")
    reference = reference - reference.mean()
    estimate = estimate - estimate.mean()
    scale = np.dot(estimate, reference) / (np.dot(reference, reference) + _EPS)
    target = scale * reference
    noise = estimate - target
    return float(10 * np.log10((np.dot(target, target) + _EPS) / (np.dot(noise, noise) + _EPS)))


def _stft_mag(x, nfft, hop, win):
    """Magnitude STFT with a periodic Hann window centred in an nfft frame; reflect-padded ends."""
    window = np.zeros(nfft)
    offset = (nfft - win) // 2
    window[offset: offset + win] = np.hanning(win + 1)[:-1]
    pad = nfft // 2
    x = np.pad(x, pad, mode="reflect") if x.size > pad else np.pad(x, pad)
    frames = np.lib.stride_tricks.sliding_window_view(x, nfft)[::hop]
    return np.abs(np.fft.rfft(frames * window, axis=1))  # [frames, bins]


def mel_filterbank(rate, nfft, n_mels, fmin=0.0, fmax=None):
    """Triangular filters with unit peaks, equally spaced on the HTK mel scale."""
    fmax = rate / 2 if fmax is None else fmax
    to_mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)
    to_hz = lambda m: 700.0 * (10 ** (m / 2595.0) - 1.0)
    edges = to_hz(np.linspace(to_mel(fmin), to_mel(fmax), n_mels + 2))
    freqs = np.linspace(0, rate / 2, nfft // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None, :] - lower) / (centre - lower)
    falling = (upper - freqs[None, :]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def log_mel_distance(reference, estimate, rate, n_mels=80, floor=1e-5):
    """Mean absolute difference of log10 mel magnitude spectrograms (64 ms Hann window, 16 ms hop)."""
    reference, estimate = _same_length(reference, estimate)
    nfft = _pow2_at_least(0.064 * rate)
    hop = nfft // 4
    fb = mel_filterbank(rate, nfft, n_mels)
    ref_mel = _stft_mag(reference, nfft, hop, nfft) @ fb.T
    est_mel = _stft_mag(estimate, nfft, hop, nfft) @ fb.T
    return float(np.mean(np.abs(np.log10(np.maximum(ref_mel, floor)) - np.log10(np.maximum(est_mel, floor)))))


def multi_resolution_stft_distance(reference, estimate, rate, floor=1e-5):
    """Mean over three resolutions of spectral convergence + mean |log magnitude difference|.

    Resolutions follow Parallel WaveGAN's (FFT 1024/2048/512 at 24 kHz), scaled to the rate.
    """
    reference, estimate = _same_length(reference, estimate)
    total = 0.0
    resolutions = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))
    for nfft, hop, win in resolutions:
        scale = rate / 24000
        nfft_r = _pow2_at_least(nfft * scale)
        hop_r = max(1, int(round(hop * scale)))
        win_r = min(nfft_r, int(round(win * scale)))
        ref_mag = _stft_mag(reference, nfft_r, hop_r, win_r)
        est_mag = _stft_mag(estimate, nfft_r, hop_r, win_r)
        convergence = np.linalg.norm(ref_mag - est_mag) / (np.linalg.norm(ref_mag) + _EPS)
        log_mag = np.mean(np.abs(np.log(np.maximum(ref_mag, floor)) - np.log(np.maximum(est_mag, floor))))
        total += convergence + log_mag
    return float(total / len(resolutions))


def estimate_delay(reference, estimate, max_lag):
    """Lag (samples) by which estimate trails reference, from the peak of their cross-correlation."""
    reference = np.asarray(reference, dtype=np.float64).ravel()
    estimate = np.asarray(estimate, dtype=np.float64).ravel()
    n = reference.size + estimate.size
    nfft = 1 << (n - 1).bit_length()
    xcorr = np.fft.irfft(np.fft.rfft(estimate, nfft) * np.conj(np.fft.rfft(reference, nfft)), nfft)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    values = np.concatenate([xcorr[: max_lag + 1], xcorr[nfft - max_lag:]])
    return int(lags[int(np.argmax(values))])


def align(reference, estimate, delay):
    """Shift estimate back by delay samples and cut both to the overlap."""
    reference = np.asarray(reference, dtype=np.float64).ravel()
    estimate = np.asarray(estimate, dtype=np.float64).ravel()
    if delay >= 0:
        estimate = estimate[delay:]
    else:
        reference = reference[-delay:]
    n = min(reference.size, estimate.size)
    return reference[:n], estimate[:n]


def codebook_usage(codes, codebook_size):
    """Entries used and perplexity (exp of code entropy, nats) of one codebook's codes."""
    codes = np.asarray(codes).ravel()
    counts = np.bincount(codes, minlength=codebook_size).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return int((counts > 0).sum()), float(np.exp(-(p * np.log(p)).sum()))


def _same_length(a, b):
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.size != b.size:
        raise ValueError(f"length mismatch: {a.size} vs {b.size}")
    return a, b


def _pow2_at_least(x):
    return 1 << int(np.ceil(np.log2(x)))


# Pitch (F0) tracking: YIN after de Cheveigné & Kawahara, "YIN, a fundamental frequency estimator for speech and
# music", JASA 111(4), 2002 (difference function, cumulative mean normalisation, absolute threshold, parabolic
# interpolation), with a voicing decision from the normalised dip depth and the frame's level.
PITCH_RATE = 16000
PITCH_HOP_S = 0.010
PITCH_WINDOW_S = 0.025
PITCH_FMIN = 60.0
PITCH_FMAX = 500.0
PITCH_THRESHOLD = 0.15  # YIN's absolute threshold: first dip below it is the period
PITCH_VOICED_MAX_APERIODICITY = 0.35  # a frame whose best dip is shallower than this is unvoiced
PITCH_SILENCE_DB = 40.0  # frames this far below the signal's loudest frame are unvoiced
GROSS_PITCH_ERROR = 0.20


def pitch_track(x, rate, fmin=PITCH_FMIN, fmax=PITCH_FMAX):
    """F0 in Hz per 10 ms frame (0 where unvoiced) and the voiced flags, frame i centred at i * 10 ms."""
    x = resample(np.asarray(x, dtype=np.float64).ravel(), rate, PITCH_RATE)
    hop = int(PITCH_HOP_S * PITCH_RATE)
    window = int(PITCH_WINDOW_S * PITCH_RATE)
    tau_min = int(np.floor(PITCH_RATE / fmax))
    tau_max = int(np.ceil(PITCH_RATE / fmin))
    span = window + tau_max + 1
    n_frames = max(1, int(np.ceil(x.size / hop)))
    # Frame i looks at samples from i*hop - window/2: its analysis window is centred on the frame time.
    padded = np.pad(x, (window // 2, n_frames * hop + span))
    frames = np.lib.stride_tricks.sliding_window_view(padded, span)[: n_frames * hop: hop][:n_frames]
    # d(tau) = sum_{j<W} (x_j - x_{j+tau})^2 = e(0) + e(tau) - 2 r(tau), r by FFT, e by cumulative sums.
    nfft = 1 << (2 * span - 1).bit_length()
    r = np.fft.irfft(np.fft.rfft(frames, nfft) * np.conj(np.fft.rfft(frames[:, :window], nfft)), nfft)[:, : tau_max + 1]
    energy = np.concatenate([np.zeros((n_frames, 1)), np.cumsum(frames ** 2, axis=1)], axis=1)
    taus = np.arange(tau_max + 1)
    e_tau = energy[:, taus + window] - energy[:, taus]
    d = np.maximum(e_tau[:, :1] + e_tau - 2 * r, 0.0)
    # Cumulative mean normalised difference: d'(0) = 1, d'(tau) = d(tau) * tau / sum_{j=1..tau} d(j).
    cmnd = np.ones_like(d)
    cumulative = np.cumsum(d[:, 1:], axis=1)
    cmnd[:, 1:] = d[:, 1:] * taus[1:] / np.maximum(cumulative, _EPS)
    search = cmnd[:, tau_min: tau_max + 1]
    lags = np.arange(search.shape[1])
    # The period is the first dip under the threshold, followed down to its local minimum; a frame with no
    # such dip takes its deepest one (its depth then decides voicing).
    below = search[:, :-1] < PITCH_THRESHOLD
    first = np.argmax(below, axis=1)
    stops = (search[:, 1:] >= search[:, :-1]) & (lags[None, :-1] >= first[:, None])
    stops[:, -1] = True
    tau = np.where(below.any(axis=1), np.argmax(stops, axis=1), np.argmin(search[:, :-1], axis=1))
    rows = np.arange(n_frames)
    aperiodicity = search[rows, tau]
    # Parabolic interpolation of the dip for sub-sample precision.
    inner = (tau > 0) & (tau < search.shape[1] - 1)
    a = search[rows, np.maximum(tau - 1, 0)]
    c = search[rows, np.minimum(tau + 1, search.shape[1] - 1)]
    curvature = a - 2 * aperiodicity + c
    shift = np.where(inner & (curvature > 0), 0.5 * (a - c) / np.where(curvature > 0, curvature, 1.0), 0.0)
    f0 = PITCH_RATE / (tau_min + tau + shift)
    level_db = 10 * np.log10(e_tau[:, 0] / window + 1e-20)
    voiced = (aperiodicity < PITCH_VOICED_MAX_APERIODICITY) & (level_db > level_db.max() - PITCH_SILENCE_DB)
    voiced &= level_db > -90.0  # digital silence has no pitch, whatever its relative level
    f0[~voiced] = 0.0
    return f0, voiced


def pitch_errors(reference, estimate, rate):
    """Voicing-decision error and gross pitch error of estimate against reference (fractions in [0, 1]).

    VDE: share of all frames where the two disagree on voiced/unvoiced. GPE: share of the frames voiced in both
    where the estimate's F0 is more than 20 % off the reference's (NaN when no frame is voiced in both). The frame
    counts come along so that several clips can be pooled (pooled_pitch_errors).
    """
    reference, estimate = _same_length(reference, estimate)
    f0_ref, voiced_ref = pitch_track(reference, rate)
    f0_est, voiced_est = pitch_track(estimate, rate)
    both = voiced_ref & voiced_est
    counts = {"frames": int(voiced_ref.size), "voiced_frames": int(voiced_ref.sum()),
              "voicing_disagreements": int((voiced_ref != voiced_est).sum()), "voiced_in_both": int(both.sum()),
              "gross_errors": int((np.abs(f0_est[both] / f0_ref[both] - 1.0) > GROSS_PITCH_ERROR).sum())}
    return {**pooled_pitch_errors([counts]), **counts}


def pooled_pitch_errors(counts):
    """VDE and GPE over the frames of several clips together (each a pitch_errors result)."""
    frames = sum(c["frames"] for c in counts)
    both = sum(c["voiced_in_both"] for c in counts)
    return {"vde": sum(c["voicing_disagreements"] for c in counts) / frames if frames else float("nan"),
            "gpe": sum(c["gross_errors"] for c in counts) / both if both else float("nan")}
