"""WavCaps source on the fixture: .wav ids vs .flac files, blacklist, long extracted prefix, zip members."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
import soundfile as sf

from uniaudio.core import storage
from uniaudio.pipelines.records import AudioRecord, Reject
from uniaudio.pipelines.sources import SourceError, get_source
from uniaudio.testing.corpora import wavcaps

PREFIX = "mnt/fast/nobackup/scratch4weeks/xm00178/WavCaps/data/waveforms"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return wavcaps.build(tmp_path_factory.mktemp("wavcaps"))


def _split(items: list) -> tuple[dict[str, AudioRecord], list[Reject]]:
    return {r.key: r for r in items if isinstance(r, AudioRecord)}, [r for r in items if isinstance(r, Reject)]


def test_records_and_rejects(corpus: Path) -> None:
    source = get_source("wavcaps")(str(corpus))
    assert source.partitions() == [
        "json_files/AudioSet_SL/as_final.json",
        "json_files/BBC_Sound_Effects/bbc_final.json",
        "json_files/SoundBible/sb_final.json",
    ]
    records, rejects = _split(list(source.iter_all()))
    assert list(records) == ["wavcaps/AudioSet_SL/Yb0RFKhbpFJA", "wavcaps/SoundBible/2116"]

    as_rec = records["wavcaps/AudioSet_SL/Yb0RFKhbpFJA"]
    assert as_rec.audio_uri == str(corpus / f"Zip_files/AudioSet_SL/{PREFIX}/AudioSet_SL_flac/Yb0RFKhbpFJA.flac")
    assert as_rec.member is None
    assert as_rec.caption == "Rain falls steadily on a tin roof."
    assert as_rec.duration_s == pytest.approx(2.0, abs=0.02)
    assert sf.info(as_rec.audio_uri).duration == pytest.approx(as_rec.duration_s, abs=0.02)
    assert as_rec.meta == {"wavcaps_source": "AudioSet_SL", "id": "Yb0RFKhbpFJA.wav"}

    sb = records["wavcaps/SoundBible/2116"]
    assert sb.audio_uri == str(corpus / "Zip_files/SoundBible/SoundBible.zip")
    assert sb.member == f"{PREFIX}/SoundBible_flac/2116.flac"
    assert sb.caption == "A dog barks twice and then growls."  # surrounding whitespace stripped
    assert sb.duration_s == pytest.approx(1.5, abs=0.02)
    assert sb.meta["title"] == "Dog Barking" and sb.meta["author"] == "Mike Koenig"
    assert set(sb.meta) == {"wavcaps_source", "id", "title", "description", "author", "href", "download_link"}
    with zipfile.ZipFile(sb.audio_uri) as zf:
        assert sf.info(io.BytesIO(zf.read(sb.member))).duration == pytest.approx(1.5, abs=0.02)

    assert [(r.key, r.reason.value) for r in rejects] == [
        ("wavcaps/AudioSet_SL/Y--PJHxphWEs", "blacklisted"),
        ("wavcaps/BBC_Sound_Effects/07070164", "missing_file"),
    ]
    assert "as_final.json item 1" in rejects[0].detail
    assert "bbc_final.json item 0" in rejects[1].detail and "BBC_Sound_Effects_flac/07070164.flac" in rejects[1].detail


def test_blacklists_option_selects_files(corpus: Path) -> None:
    partition = "json_files/AudioSet_SL/as_final.json"
    for chosen_names in (["blacklist_exclude_test_ac.json"], "blacklist_exclude_all_ac, blacklist_exclude_test_ac"):
        chosen = get_source("wavcaps")(str(corpus), blacklists=chosen_names)
        rejects = [r.reason.value for r in chosen.read_partition(partition) if isinstance(r, Reject)]
        assert rejects == ["blacklisted"]
    # a selection without that file excludes nothing: the item then fails on its absent audio instead
    other = get_source("wavcaps")(str(corpus), blacklists=["blacklist_exclude_all_ac"])
    records, rejects = _split(list(other.read_partition(partition)))
    assert list(records) == ["wavcaps/AudioSet_SL/Yb0RFKhbpFJA"]
    assert [(r.key, r.reason.value) for r in rejects] == [("wavcaps/AudioSet_SL/Y--PJHxphWEs", "missing_file")]


def test_malformed_items_and_split_zip(tmp_path: Path) -> None:
    src = tmp_path / "json_files/FreeSound"
    src.mkdir(parents=True)
    (src / "fsd_final.json").write_text(
        '{"num_captions_per_audio": 1, "data": ['
        '{"id": "180912", "audio": "wav_path", "duration": 1.0},'
        '{"id": "180913.wav", "caption": "Door creaks.", "audio": "wav_path", "duration": 1.0},'
        '{"id": "180914.wav", "caption": "Door slams.", "audio": "wav_path", "duration": "long"}]}'
    )
    zips = tmp_path / "Zip_files/FreeSound"
    zips.mkdir(parents=True)
    with zipfile.ZipFile(zips / "FreeSound.zip", "w") as zf:
        zf.writestr(f"{PREFIX}/FreeSound_flac/180913.flac", b"x")
    (zips / "FreeSound.z01").write_bytes(b"part one")
    items = list(get_source("wavcaps")(str(tmp_path)).iter_all())
    # the split archive cannot be read in place, so its member is not found
    assert [(r.key, r.reason.value) for r in items] == [
        ("wavcaps/FreeSound/180912", "malformed_metadata"),
        ("wavcaps/FreeSound/180913", "missing_file"),
        ("wavcaps/FreeSound/180914", "malformed_metadata"),
    ]
    assert "fsd_final.json item 0: no id or caption" in items[0].detail
    assert "fsd_final.json item 2: bad duration 'long'" in items[2].detail
    (zips / "FreeSound.z01").unlink()
    items = list(get_source("wavcaps")(str(tmp_path)).iter_all())
    assert [(r.key, r.member) for r in items if isinstance(r, AudioRecord)] == [
        ("wavcaps/FreeSound/180913", f"{PREFIX}/FreeSound_flac/180913.flac")
    ]


def test_bad_layout(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=str(tmp_path)):
        get_source("wavcaps")(str(tmp_path)).partitions()


def test_s3_input(corpus: Path, s3_bucket: str) -> None:
    storage.upload_tree(corpus, f"{s3_bucket}/WavCaps")
    uri = f"{s3_bucket}/WavCaps"
    items = list(get_source("wavcaps")(uri).iter_all())
    records, rejects = _split(items)
    assert {k: (r.audio_uri, r.member) for k, r in records.items()} == {
        "wavcaps/AudioSet_SL/Yb0RFKhbpFJA": (
            f"{uri}/Zip_files/AudioSet_SL/{PREFIX}/AudioSet_SL_flac/Yb0RFKhbpFJA.flac",
            None,
        ),
        "wavcaps/SoundBible/2116": (
            f"{uri}/Zip_files/SoundBible/SoundBible.zip",
            f"{PREFIX}/SoundBible_flac/2116.flac",
        ),
    }
    assert [r.reason.value for r in rejects] == ["blacklisted", "missing_file"]
