import numpy as np
import pytest

from uniaudio.tokenize.reasoning_codec.config import WINDOW_CONTEXT, WINDOW_SAMPLES
from uniaudio.tokenize.reasoning_codec.windowing import cut_windows, token_counts


@pytest.mark.parametrize(("seconds", "t_r", "t_s"), [(1.0, 6, 13), (2.0, 11, 26), (30.0, 151, 376), (0.01, 1, 1)])
def test_token_counts_follow_the_released_formula(seconds, t_r, t_s):
    assert token_counts(int(seconds * 24_000)) == (t_r, t_s)


def test_tile_mode_repeats_short_clips_into_one_30s_window():
    wave = np.arange(48_000, dtype=np.float32)
    clip = cut_windows(wave, "tile")
    assert len(clip.windows) == 1
    window = clip.windows[0]
    assert window.shape == (WINDOW_SAMPLES + WINDOW_CONTEXT,)
    np.testing.assert_array_equal(window[48_000:96_000], wave)  # the clip repeats
    assert (clip.reason_frames, clip.recon_frames) == (11, 26)


def test_segment_mode_pads_to_whole_400ms_blocks_covering_the_frames():
    clip = cut_windows(np.ones(48_000, np.float32), "segment")
    (window,) = clip.windows
    assert window.shape == (57_600 + WINDOW_CONTEXT,)  # 26 frames · 1920 = 49920 → 6 · 9600
    assert window[:48_000].min() == 1 and window[48_000:].max() == 0


@pytest.mark.parametrize("mode", ["tile", "segment"])
def test_long_inputs_hop_exactly_30s(mode):
    wave = np.arange(31 * 24_000, dtype=np.float32)
    clip = cut_windows(wave, mode)
    assert len(clip.windows) == 2
    assert clip.windows[0].shape == (WINDOW_SAMPLES + WINDOW_CONTEXT,)
    assert clip.windows[1][0] == wave[WINDOW_SAMPLES]  # window k starts at k · 30 s: no drift
    np.testing.assert_array_equal(clip.windows[0][-WINDOW_CONTEXT:], wave[WINDOW_SAMPLES:WINDOW_SAMPLES + 240])


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="mono"):
        cut_windows(np.zeros((2, 100), np.float32), "tile")
    with pytest.raises(ValueError, match="empty"):
        cut_windows(np.zeros(0, np.float32), "tile")
    with pytest.raises(ValueError, match="window mode"):
        cut_windows(np.zeros(10, np.float32), "overlap")  # type: ignore[arg-type]
