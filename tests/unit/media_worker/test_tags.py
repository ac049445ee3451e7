from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest
from mutagen.apev2 import APEv2
from mutagen.flac import FLAC
from mutagen.mp4 import MP4

from media_worker.tags import Tags, read_tags
from tests import audio_fixtures
from tests.audio_fixtures import BACK_COVER, FORMATS, Cover

FULL_TAGS = {
    "TITLE": "Ünïcødé — 日本語 ☃\x00",
    "ARTIST": "Alice;Bob",
    "ALBUMARTIST": "Alice & Bob",
    "ALBUM": "Night\x00\x00",
    "TRACKNUMBER": "1/4",
    "DISCNUMBER": "2/2",
    "DATE": "2021/03/04",
    "GENRE": "Synthpop",
    "ISRC": "us-abc-21-00001",
    "COMPOSER": "Carol",
    "LABEL": "Indie Label",
    "COPYRIGHT": "℗ 2021 Alice",
    "BPM": "120.0",
    "EXPLICIT": "1",
    "LYRICS": "la la la\nla la",
    "REPLAYGAIN_TRACK_GAIN": "-6.52 dB",
    "REPLAYGAIN_TRACK_PEAK": "0.988",
    "REPLAYGAIN_ALBUM_GAIN": "-7.10 dB",
    "REPLAYGAIN_ALBUM_PEAK": "1.000000",
    "R128_TRACK_GAIN": "-512",
}
EXPECTED = Tags(
    title="Ünïcødé — 日本語 ☃",
    artists=("Alice", "Bob"),
    album_artist="Alice & Bob",
    album="Night",
    track_number=1,
    track_total=4,
    disc_number=2,
    disc_total=2,
    date="2021-03-04",
    year=2021,
    genre="Synthpop",
    isrc="USABC2100001",
    composer="Carol",
    label="Indie Label",
    copyright="℗ 2021 Alice",
    bpm=120,
    explicit=True,
    lyrics="la la la\nla la",
    replaygain_track_gain_db=-6.52,
    replaygain_track_peak=0.988,
    replaygain_album_gain_db=-7.1,
    replaygain_album_peak=1.0,
    r128_track_gain_db=-2.0,
)
SMALL_FRONT = Cover(audio_fixtures.cover_image(64, 64, "navy"))
LARGE_BACK = Cover(audio_fixtures.cover_image(500, 500, "olive"), picture_type=BACK_COVER)
LARGE_FRONT = Cover(audio_fixtures.cover_image(200, 200, "teal", fmt="PNG"), mime="image/png")


@pytest.fixture(scope="module")
def silent_flac(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("blank")
    return audio_fixtures.synthesise(directory, "blank", "flac", expression="0", seconds=0.2)


def flac_with(tmp_path: Path, silent_flac: Path, tags: dict[str, str], covers=()) -> Path:
    path = Path(shutil.copy(silent_flac, tmp_path / "tagged.flac"))
    audio_fixtures.write_tags(path, "flac", tags, covers)
    return path


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_yields_every_field(fmt: str, tmp_path: Path) -> None:
    path = audio_fixtures.synthesise(tmp_path, "tagged", fmt, seconds=0.2)
    audio_fixtures.write_tags(path, fmt, FULL_TAGS, [SMALL_FRONT, LARGE_BACK, LARGE_FRONT])
    tags = read_tags(path)
    assert tags.cover is not None
    if FORMATS[fmt].container == "mp4":
        # MP4 covers carry no picture type, so every one counts as a front cover.
        assert tags.cover.data == LARGE_BACK.data
    else:
        assert (tags.cover.data, tags.cover.mime) == (LARGE_FRONT.data, "image/png")
    assert (tags.cover.width, tags.cover.height) == (
        (500, 500) if FORMATS[fmt].container == "mp4" else (200, 200)
    )
    assert tags == Tags(**{**EXPECTED.__dict__, "cover": tags.cover})


def test_without_a_front_cover_the_largest_picture_wins(tmp_path: Path, silent_flac: Path) -> None:
    small_back = Cover(audio_fixtures.cover_image(50, 50), picture_type=BACK_COVER)
    path = flac_with(tmp_path, silent_flac, {}, [small_back, LARGE_BACK])
    cover = read_tags(path).cover
    assert cover is not None and cover.data == LARGE_BACK.data


def test_unreadable_pictures_are_ignored(tmp_path: Path, silent_flac: Path) -> None:
    path = flac_with(tmp_path, silent_flac, {}, [Cover(b"not an image" * 100), SMALL_FRONT])
    cover = read_tags(path).cover
    assert cover is not None and cover.data == SMALL_FRONT.data


@pytest.mark.parametrize(
    ("written", "date", "year"),
    [
        ("2021", "2021", 2021),
        ("2021-03", "2021-03", 2021),
        ("2021-03-04", "2021-03-04", 2021),
        ("2021/03/04", "2021-03-04", 2021),
        ("2021.3.4", "2021-03-04", 2021),
        ("20210304", "2021-03-04", 2021),
        ("2021-03-04T10:20:30Z", "2021-03-04", 2021),
        ("2021-02-30", "2021-02", 2021),
        ("2021-13-01", "2021", 2021),
        ("04/03/2021", "2021", 2021),
        ("March 2021", "2021", 2021),
        ("0000", None, None),
        ("soon", None, None),
        ("   ", None, None),
    ],
)
def test_dates_are_read_leniently(
    written: str, date: str | None, year: int | None, tmp_path: Path, silent_flac: Path
) -> None:
    tags = read_tags(flac_with(tmp_path, silent_flac, {"DATE": written}))
    assert (tags.date, tags.year) == (date, year)


def test_a_year_tag_stands_in_for_a_missing_date(tmp_path: Path, silent_flac: Path) -> None:
    tags = read_tags(flac_with(tmp_path, silent_flac, {"DATE": "junk", "YEAR": "1999"}))
    assert (tags.date, tags.year) == ("1999", 1999)


@pytest.mark.parametrize(
    ("track", "total", "expected"),
    [
        ("1/4", None, (1, 4)),
        ("07", None, (7, None)),
        ("3 of 12", None, (3, 12)),
        ("3", "10", (3, 10)),
        ("0", None, (None, None)),
        ("0/0", None, (None, None)),
        ("-2/4", None, (None, None)),
        ("A1", None, (None, None)),
        ("99999", None, (None, None)),
    ],
)
def test_track_numbers(
    track: str, total: str | None, expected: tuple, tmp_path: Path, silent_flac: Path
) -> None:
    written = {"TRACKNUMBER": track, **({"TRACKTOTAL": total} if total else {})}
    tags = read_tags(flac_with(tmp_path, silent_flac, written))
    assert (tags.track_number, tags.track_total) == expected


@pytest.mark.parametrize(
    ("bpm", "expected"), [("120.0", 120), ("128.6", 129), ("90", 90), ("fast", None), ("0", None)]
)
def test_bpm(bpm: str, expected: int | None, tmp_path: Path, silent_flac: Path) -> None:
    assert read_tags(flac_with(tmp_path, silent_flac, {"BPM": bpm})).bpm == expected


@pytest.mark.parametrize(
    ("written", "explicit"),
    [
        ({"ITUNESADVISORY": "1"}, True),
        ({"ITUNESADVISORY": "2"}, False),
        ({"ITUNESADVISORY": "0"}, None),
        ({"EXPLICIT": "yes"}, True),
        ({"EXPLICIT": "clean"}, False),
        ({"EXPLICIT": "maybe"}, None),
        ({}, None),
    ],
)
def test_explicit_flags(
    written: dict[str, str], explicit: bool | None, tmp_path: Path, silent_flac: Path
) -> None:
    assert read_tags(flac_with(tmp_path, silent_flac, written)).explicit is explicit


@pytest.mark.parametrize(("rating", "explicit"), [("1", True), ("2", False)])
def test_the_itunes_rating_atom(
    rating: str, explicit: bool, formats: dict[str, Path], tmp_path: Path
) -> None:
    path = Path(shutil.copy(formats["m4a_aac"], tmp_path / "rated.m4a"))
    audio_fixtures.write_tags(path, "m4a_aac", {"EXPLICIT": rating})
    assert read_tags(path).explicit is explicit


def test_odd_values_become_none(tmp_path: Path, silent_flac: Path) -> None:
    written = {
        "ISRC": "not-an-isrc",
        "REPLAYGAIN_TRACK_GAIN": "loud",
        "REPLAYGAIN_TRACK_PEAK": "-0.5",
        "R128_TRACK_GAIN": "1.5",
        "TITLE": "\x00\x00",
        "GENRE": "   ",
    }
    tags = read_tags(flac_with(tmp_path, silent_flac, written))
    assert tags == Tags()


def test_nul_separated_artists_are_split(tmp_path: Path, silent_flac: Path) -> None:
    tags = read_tags(flac_with(tmp_path, silent_flac, {"ARTIST": "Alice\x00Bob\x00"}))
    assert tags.artists == ("Alice", "Bob")


def test_an_artists_tag_wins_over_a_joined_artist(tmp_path: Path, silent_flac: Path) -> None:
    path = flac_with(tmp_path, silent_flac, {"ARTIST": "Alice feat. Bob"})
    audio = FLAC(path)
    audio["ARTISTS"] = ["Alice", "Bob"]
    audio.save()
    assert read_tags(path).artists == ("Alice", "Bob")


def test_a_legacy_coverart_comment_is_read(tmp_path: Path, silent_flac: Path) -> None:
    encoded = base64.b64encode(SMALL_FRONT.data).decode("ascii")
    path = flac_with(tmp_path, silent_flac, {"COVERART": encoded, "COVERARTMIME": "image/jpeg"})
    cover = read_tags(path).cover
    assert cover is not None and (cover.data, cover.width) == (SMALL_FRONT.data, 64)


def test_riff_info_tags_of_a_wav_are_read(tmp_path: Path) -> None:
    path = tmp_path / "info.wav"
    audio_fixtures.ffmpeg(
        "-f", "lavfi", "-i", "anullsrc=d=0.2",
        "-metadata", "title=From a DAW", "-metadata", "artist=Dana",
        "-metadata", "album=Sessions", "-metadata", "date=2019", "-metadata", "genre=Ambient",
        "-c:a", "pcm_s16le", str(path),
    )  # fmt: skip
    tags = read_tags(path)
    assert (tags.title, tags.artists, tags.album, tags.year, tags.genre) == (
        "From a DAW", ("Dana",), "Sessions", 2019, "Ambient"
    )


def test_id3_wins_over_riff_info(tmp_path: Path) -> None:
    path = tmp_path / "both.wav"
    audio_fixtures.ffmpeg(
        "-f", "lavfi", "-i", "anullsrc=d=0.2", "-metadata", "title=Old", "-metadata", "artist=Dana",
        "-c:a", "pcm_s16le", str(path),
    )  # fmt: skip
    audio_fixtures.write_tags(path, "wav16", {"TITLE": "New"})
    tags = read_tags(path)
    assert (tags.title, tags.artists) == ("New", ("Dana",))


def test_mp4_track_pairs_and_tempo(formats: dict[str, Path], tmp_path: Path) -> None:
    path = Path(shutil.copy(formats["m4a_alac"], tmp_path / "pairs.m4a"))
    audio = MP4(path)
    audio["trkn"] = [(0, 12)]
    audio["disk"] = [(1, 0)]
    audio["tmpo"] = [0]
    audio.save()
    tags = read_tags(path)
    positions = (tags.track_number, tags.track_total, tags.disc_number, tags.disc_total)
    assert positions == (None, 12, 1, None)
    assert tags.bpm is None


def test_untagged_audio_and_non_audio_give_empty_tags(
    formats: dict[str, Path], tmp_path: Path
) -> None:
    assert read_tags(formats["wav16"]) == Tags()
    assert read_tags(audio_fixtures.zip_named_wav(tmp_path)) == Tags()
    assert read_tags(audio_fixtures.empty_file(tmp_path)) == Tags()


@pytest.mark.parametrize("fmt", ["dsf", "dff"])
def test_dsd_id3_tags_yield_every_field(fmt: str, tmp_path: Path) -> None:
    path = audio_fixtures.dsd_tone(tmp_path, fmt, seconds=0.1)
    audio_fixtures.write_tags(path, fmt, FULL_TAGS, [SMALL_FRONT, LARGE_BACK, LARGE_FRONT])
    tags = read_tags(path)
    assert tags.cover is not None and tags.cover.data == LARGE_FRONT.data
    assert tags == Tags(**{**EXPECTED.__dict__, "cover": tags.cover})


def test_asf_attributes_yield_every_field(tmp_path: Path) -> None:
    # WMA Lossless has no encoder; its tags are ASF attributes like any WMA's.
    path = audio_fixtures.wma(tmp_path)
    audio_fixtures.write_tags(path, "asf", FULL_TAGS, [SMALL_FRONT, LARGE_BACK, LARGE_FRONT])
    tags = read_tags(path)
    assert tags.cover is not None
    assert (tags.cover.data, tags.cover.mime, tags.cover.width) == (
        LARGE_FRONT.data, "image/png", 200
    )
    assert tags == Tags(**{**EXPECTED.__dict__, "cover": tags.cover})


def test_an_ape_cover_gets_its_type_from_its_content(
    formats: dict[str, Path], tmp_path: Path
) -> None:
    path = Path(shutil.copy(formats["wavpack"], tmp_path / "covered.wv"))
    audio_fixtures.write_tags(path, "wavpack", {}, [LARGE_BACK])
    cover = read_tags(path).cover
    assert cover is not None
    assert (cover.data, cover.mime, cover.picture_type) == (LARGE_BACK.data, "image/jpeg", 4)


def test_raw_adts_with_an_ape_tag_at_the_end_is_read(
    formats: dict[str, Path], tmp_path: Path
) -> None:
    path = Path(shutil.copy(formats["adts_aac"], tmp_path / "ape-tagged.aac"))
    tag = APEv2()
    tag["Title"] = "Tagged at the end"
    tag["Track"] = "3/9"
    tag.save(path)
    tags = read_tags(path)
    assert (tags.title, tags.track_number, tags.track_total) == ("Tagged at the end", 3, 9)


@pytest.mark.parametrize("fmt", ["adts_aac", "wavpack", "ogg_flac"])
def test_untagged_new_formats_give_empty_tags(fmt: str, tmp_path: Path) -> None:
    path = audio_fixtures.synthesise(tmp_path, "bare", fmt, seconds=0.2, expression="0")
    assert read_tags(path) == Tags()
