from __future__ import annotations

import base64
import shutil
from io import BytesIO
from pathlib import Path

import pytest
from mutagen.aiff import AIFF
from mutagen.flac import FLAC, Picture
from mutagen.id3 import ID3
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE
from PIL import Image

from media_worker import downloads
from media_worker.downloads import DOWNLOAD_FORMATS, ORIGINAL, DownloadFormat, make_download
from media_worker.errors import RejectedImage
from media_worker.probe import probe_audio
from media_worker.tagging import DeliveryTags, cover_for_delivery, write_tags
from media_worker.tags import FRONT_COVER, Tags, read_tags
from tests import audio_fixtures

TAGGED_FORMATS = [fmt for fmt in DOWNLOAD_FORMATS.values() if fmt is not ORIGINAL]
COVER = cover_for_delivery(audio_fixtures.cover_image(1600, 1000, fmt="PNG"))
TAGS = DeliveryTags(
    title="Ünïcødé — 日本語 ☃",
    artist="Alice",
    album_artist="Alice & Bob",
    album="Night Drive",
    track_number=3,
    track_total=12,
    disc_number=1,
    disc_total=2,
    date="2021-03-04",
    genre="Synthpop",
    isrc="USABC2100001",
    label="Indie Label",
    copyright="℗ 2021 Alice",
    cover=COVER,
)
EXPECTED = Tags(
    title="Ünïcødé — 日本語 ☃",
    artists=("Alice",),
    album_artist="Alice & Bob",
    album="Night Drive",
    track_number=3,
    track_total=12,
    disc_number=1,
    disc_total=2,
    date="2021-03-04",
    year=2021,
    genre="Synthpop",
    isrc="USABC2100001",
    label="Indie Label",
    copyright="℗ 2021 Alice",
)


def by_name(fmt: DownloadFormat) -> str:
    return fmt.name


@pytest.fixture(scope="module")
def untagged(tmp_path_factory: pytest.TempPathFactory, ffmpeg: str) -> dict[str, Path]:
    """Every taggable format, made from one short master by ``make_download``."""
    directory = tmp_path_factory.mktemp("untagged")
    master = audio_fixtures.synthesise(directory, "master", "wav16", seconds=1.0)
    info = probe_audio(master, ffmpeg=ffmpeg, max_seconds=60)
    return {
        fmt.name: make_download(master, directory / f"{fmt.name}{fmt.extension}", fmt, info,
                                ffmpeg=ffmpeg, timeout=60)  # fmt: skip
        for fmt in TAGGED_FORMATS
    }


@pytest.fixture
def delivered(untagged: dict[str, Path], tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A fresh copy of the untagged download in the test's format."""
    fmt: DownloadFormat = request.getfixturevalue("fmt")
    return Path(shutil.copy(untagged[fmt.name], tmp_path))


def pcm_md5(path: Path) -> str:
    result = audio_fixtures.ffmpeg("-i", str(path), "-map", "0:a", "-f", "md5", "-")
    return result.stdout.decode().strip()


@pytest.mark.parametrize("fmt", TAGGED_FORMATS, ids=by_name)
def test_every_format_carries_every_tag_and_the_cover(
    fmt: DownloadFormat, delivered: Path
) -> None:
    audio_before = pcm_md5(delivered)
    write_tags(delivered, fmt, TAGS)
    read = read_tags(delivered)
    assert read.cover is not None
    assert read.cover.data == COVER
    assert (read.cover.mime, read.cover.picture_type) == ("image/jpeg", FRONT_COVER)
    assert (read.cover.width, read.cover.height) == (1200, 1200)
    assert Tags(**{**read.__dict__, "cover": None}) == EXPECTED
    assert pcm_md5(delivered) == audio_before


@pytest.mark.parametrize("fmt", TAGGED_FORMATS, ids=by_name)
def test_writing_again_replaces_every_tag(fmt: DownloadFormat, delivered: Path) -> None:
    write_tags(delivered, fmt, TAGS)
    write_tags(delivered, fmt, DeliveryTags(title="Second", track_number=4))
    assert read_tags(delivered) == Tags(title="Second", track_number=4)
    once = delivered.read_bytes()
    write_tags(delivered, fmt, DeliveryTags(title="Second", track_number=4))
    assert delivered.read_bytes() == once


@pytest.mark.parametrize("fmt", [downloads.MP3_320, downloads.MP3_V0], ids=by_name)
def test_mp3_tags_are_id3v2_4_frames(fmt: DownloadFormat, delivered: Path) -> None:
    write_tags(delivered, fmt, TAGS)
    tags = MP3(delivered).tags
    assert tags is not None and tags.version == (2, 4, 0)
    frames = {key: str(tags[key]) for key in ("TPE2", "TRCK", "TPOS", "TSRC", "TPUB", "TCOP")}
    assert frames == {
        "TPE2": "Alice & Bob", "TRCK": "3/12", "TPOS": "1/2", "TSRC": "USABC2100001",
        "TPUB": "Indie Label", "TCOP": "℗ 2021 Alice",
    }  # fmt: skip
    [picture] = tags.getall("APIC")
    assert (picture.mime, picture.type, picture.data) == ("image/jpeg", FRONT_COVER, COVER)
    # The Xing/LAME frame ffmpeg wrote still opens the audio, right after the tag.
    assert MP3(delivered).info.length == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize(("fmt", "reader"), [(downloads.WAV, WAVE), (downloads.AIFF, AIFF)],
                         ids=["wav", "aiff"])  # fmt: skip
def test_wav_and_aiff_carry_an_id3_chunk(
    fmt: DownloadFormat, reader: type, delivered: Path
) -> None:
    write_tags(delivered, fmt, TAGS)
    tags = reader(delivered).tags
    assert isinstance(tags, ID3) and tags.version == (2, 4, 0)
    assert str(tags["TPE2"]) == "Alice & Bob"
    assert tags.getall("APIC")[0].data == COVER


@pytest.mark.parametrize("fmt", [downloads.ALAC, downloads.AAC_256], ids=by_name)
def test_m4a_tags_are_itunes_atoms(fmt: DownloadFormat, delivered: Path) -> None:
    write_tags(delivered, fmt, TAGS)
    tags = MP4(delivered).tags
    assert tags is not None
    assert tags["trkn"] == [(3, 12)] and tags["disk"] == [(1, 2)]
    assert tags["aART"] == ["Alice & Bob"]
    assert bytes(tags["----:com.apple.iTunes:ISRC"][0]) == b"USABC2100001"
    assert bytes(tags["----:com.apple.iTunes:LABEL"][0]) == b"Indie Label"
    assert bytes(tags["covr"][0]) == COVER


@pytest.mark.parametrize("fmt", [downloads.FLAC], ids=by_name)
def test_flac_has_vorbis_comments_and_a_picture_block(
    fmt: DownloadFormat, delivered: Path
) -> None:
    write_tags(delivered, fmt, TAGS)
    audio = FLAC(delivered)
    assert audio["ALBUMARTIST"] == ["Alice & Bob"]
    assert (audio["TRACKNUMBER"], audio["TRACKTOTAL"]) == (["3"], ["12"])
    [picture] = audio.pictures
    assert (picture.type, picture.width, picture.data) == (FRONT_COVER, 1200, COVER)


@pytest.mark.parametrize(("fmt", "reader"),
                         [(downloads.VORBIS, OggVorbis), (downloads.OPUS, OggOpus)],
                         ids=["vorbis", "opus"])  # fmt: skip
def test_ogg_carries_the_cover_as_metadata_block_picture(
    fmt: DownloadFormat, reader: type, delivered: Path
) -> None:
    write_tags(delivered, fmt, TAGS)
    audio = reader(delivered)
    [encoded] = audio["METADATA_BLOCK_PICTURE"]
    picture = Picture(base64.b64decode(encoded))
    assert (picture.type, picture.mime, picture.data) == (FRONT_COVER, "image/jpeg", COVER)
    assert audio["LABEL"] == ["Indie Label"]


def test_the_original_gets_no_tags(tmp_path: Path) -> None:
    path = tmp_path / "master.wav"
    path.write_bytes(b"untouched")
    with pytest.raises(ValueError, match="as uploaded"):
        write_tags(path, ORIGINAL, TAGS)
    assert path.read_bytes() == b"untouched"


@pytest.mark.parametrize("fmt", [downloads.FLAC], ids=by_name)
def test_a_cover_that_is_not_a_jpeg_or_png_is_refused(
    fmt: DownloadFormat, delivered: Path
) -> None:
    before = delivered.read_bytes()
    for cover in (b"not an image", audio_fixtures.cover_image(50, 50, fmt="GIF")):
        with pytest.raises(RejectedImage):
            write_tags(delivered, fmt, DeliveryTags(title="x", cover=cover))
    assert delivered.read_bytes() == before


def test_the_delivery_cover_is_a_square_1200_pixel_jpeg_cropped_to_the_centre() -> None:
    with Image.open(BytesIO(COVER)) as image:
        assert (image.format, image.size) == ("JPEG", (1200, 1200))
        rgb = image.convert("RGB")
        # The source's white square (250 px of its 1000 px height) sits in the middle.
        assert min(rgb.getpixel((600, 600))) > 240
        assert rgb.getpixel((50, 600))[1] < 60  # crimson at the edge
    assert len(cover_for_delivery(COVER, size=300)) < len(COVER)
    with pytest.raises(RejectedImage):
        cover_for_delivery(b"not an image")


@pytest.mark.parametrize(
    "fields",
    [{"title": " "}, {"title": "x", "track_number": 0}, {"title": "x", "date": "04/03/2021"},
     {"title": "x\x00y"}],
)  # fmt: skip
def test_delivery_tags_refuse_values_no_format_can_hold(fields: dict) -> None:
    with pytest.raises(ValueError):
        DeliveryTags(**fields)
