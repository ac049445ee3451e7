"""Writing tags and the cover into delivered downloads with mutagen.

Every format but the original (which is delivered byte for byte as uploaded) gets the same
tags, each in its container's usual form, the way Picard, foobar2000 and iTunes write them,
so that ``media_worker.tags.read_tags`` and common players read them back:

- FLAC: Vorbis comments and a PICTURE block;
- Ogg Vorbis and Opus: Vorbis comments, the cover as a base64 METADATA_BLOCK_PICTURE;
- MP3: ID3v2.4 (TPE2 album artist, TRCK/TPOS "n/total", TSRC, TPUB label, TCOP, APIC);
- WAV and AIFF: the same ID3v2.4 tag, in the ``id3 `` chunk (what DAWs, iTunes and
  Windows read in these containers); v2.4 rather than v2.3 keeps full dates and UTF-8;
- M4A (ALAC, AAC): iTunes atoms (©nam, ©ART, aART, ©alb, trkn, disk, ©day, ©gen, cprt,
  covr) and freeform ``----:com.apple.iTunes:ISRC`` and ``LABEL``.

Writing replaces every tag and picture the file had, so writing twice gives the same result.
A total (tracks, discs) is written only with its number: ID3 and MP4 have no place for a
total alone.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mutagen.aiff import AIFF
from mutagen.flac import FLAC, Picture
from mutagen.id3 import (
    APIC,
    ID3,
    TALB,
    TCON,
    TCOP,
    TDRC,
    TIT2,
    TPE1,
    TPE2,
    TPOS,
    TPUB,
    TRCK,
    TSRC,
    Encoding,
    ID3v1SaveOptions,
    PictureType,
)
from mutagen.mp4 import MP4, AtomDataType, MP4Cover, MP4FreeForm
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from media_worker.covers import image_mime, image_size, thumbnails
from media_worker import downloads
from media_worker.downloads import DownloadFormat
from media_worker.errors import NOT_IMAGE, RejectedImage

DELIVERY_COVER_SIZE = 1200
ID3_VERSION = 4
COVER_DESCRIPTION = "Cover"
PICTURE_COLOUR_DEPTH = 24  # bits per pixel of the RGB JPEGs covers.py makes
ITUNES_FREEFORM = "----:com.apple.iTunes:"
_MP4_IMAGE_FORMATS = {"image/jpeg": MP4Cover.FORMAT_JPEG, "image/png": MP4Cover.FORMAT_PNG}
_DATE = re.compile(r"^\d{4}(?:-\d{2}(?:-\d{2})?)?$")


@dataclass(frozen=True)
class DeliveryTags:
    """What a delivered file is tagged with: the catalogue's values, as the artist edited them.

    ``date`` is ISO 8601 as precise as it is known ("2021", "2021-03" or "2021-03-04");
    ``cover`` is the image's bytes, JPEG or PNG (``cover_for_delivery`` makes the JPEG).
    Raises ValueError for an empty title, a number below 1, a malformed date, or a NUL
    character (tag formats use it to separate values).
    """

    title: str
    artist: str | None = None
    album_artist: str | None = None
    album: str | None = None
    track_number: int | None = None
    track_total: int | None = None
    disc_number: int | None = None
    disc_total: int | None = None
    date: str | None = None
    genre: str | None = None
    isrc: str | None = None
    label: str | None = None
    copyright: str | None = None
    cover: bytes | None = None

    def __post_init__(self) -> None:
        if not self.title.strip():
            raise ValueError("a delivered file needs a title")
        numbers = (self.track_number, self.track_total, self.disc_number, self.disc_total)
        if any(number is not None and number < 1 for number in numbers):
            raise ValueError(f"track and disc numbers start at 1: {numbers}")
        if self.date is not None and not _DATE.match(self.date):
            raise ValueError(f"not an ISO 8601 date: {self.date!r}")
        if any("\x00" in text for text in self._texts()):
            raise ValueError("tag values cannot hold NUL characters")

    def _texts(self) -> list[str]:
        fields = (self.title, self.artist, self.album_artist, self.album, self.genre,
                  self.isrc, self.label, self.copyright)  # fmt: skip
        return [text for text in fields if text is not None]


def cover_for_delivery(image_bytes: bytes, size: int = DELIVERY_COVER_SIZE) -> bytes:
    """The cover as a square ``size`` × ``size`` JPEG, centre-cropped, for delivered files.

    Raises RejectedImage: ``not_image`` or ``image_too_large`` (see ``covers.thumbnails``).
    """
    return thumbnails(image_bytes, (size,))[size]


def write_tags(path: Path | str, fmt: DownloadFormat, tags: DeliveryTags) -> None:
    """Replace every tag and picture in the download at ``path`` (made in ``fmt``) with ``tags``.

    Raises ValueError for the original format, which is delivered untouched; RejectedImage
    (``not_image``) when the cover is not a JPEG or PNG; mutagen's errors when ``path`` is not
    a file of ``fmt``.
    """
    writer = _WRITERS.get(fmt.name)
    if writer is None:
        raise ValueError(f"{fmt.name} downloads are delivered as uploaded, without new tags")
    cover = _Cover.of(tags.cover) if tags.cover is not None else None
    writer(Path(path), tags, cover)


@dataclass(frozen=True)
class _Cover:
    data: bytes
    mime: str
    width: int
    height: int

    @classmethod
    def of(cls, data: bytes) -> _Cover:
        """Raises RejectedImage (``not_image``) for anything but a readable JPEG or PNG."""
        mime = image_mime(data)
        size = image_size(data)
        if mime not in _MP4_IMAGE_FORMATS or size is None:
            raise RejectedImage(NOT_IMAGE, "The cover must be a JPEG or PNG image.")
        return cls(data, mime, *size)


_Writer = Callable[[Path, DeliveryTags, _Cover | None], None]


def _position(number: int | None, total: int | None) -> str | None:
    """ID3's "n/total" (or "n")."""
    if number is None:
        return None
    return f"{number}/{total}" if total is not None else str(number)


# Vorbis comments: FLAC, Ogg Vorbis, Opus.


def _vorbis_comments(tags: DeliveryTags) -> dict[str, str]:
    has_track, has_disc = tags.track_number is not None, tags.disc_number is not None
    fields = {
        "TITLE": tags.title,
        "ARTIST": tags.artist,
        "ALBUMARTIST": tags.album_artist,
        "ALBUM": tags.album,
        "TRACKNUMBER": tags.track_number,
        "TRACKTOTAL": tags.track_total if has_track else None,
        "DISCNUMBER": tags.disc_number,
        "DISCTOTAL": tags.disc_total if has_disc else None,
        "DATE": tags.date,
        "GENRE": tags.genre,
        "ISRC": tags.isrc,
        "LABEL": tags.label,
        "COPYRIGHT": tags.copyright,
    }
    return {key: str(value) for key, value in fields.items() if value is not None}


def _flac_picture(cover: _Cover) -> Picture:
    picture = Picture()
    picture.type = PictureType.COVER_FRONT
    picture.mime = cover.mime
    picture.desc = COVER_DESCRIPTION
    picture.width, picture.height = cover.width, cover.height
    picture.depth = PICTURE_COLOUR_DEPTH
    picture.data = cover.data
    return picture


def _write_flac(path: Path, tags: DeliveryTags, cover: _Cover | None) -> None:
    audio = FLAC(path)
    if audio.tags is None:
        audio.add_tags()
    assert audio.tags is not None
    audio.tags.clear()
    audio.clear_pictures()
    for key, value in _vorbis_comments(tags).items():
        audio.tags[key] = [value]
    if cover is not None:
        audio.add_picture(_flac_picture(cover))
    audio.save(deleteid3=True)


def _write_ogg(reader: type[OggVorbis] | type[OggOpus]) -> _Writer:
    def write(path: Path, tags: DeliveryTags, cover: _Cover | None) -> None:
        audio = reader(path)
        assert audio.tags is not None  # an Ogg Vorbis or Opus stream always has a comment header
        audio.tags.clear()
        for key, value in _vorbis_comments(tags).items():
            audio.tags[key] = [value]
        if cover is not None:
            encoded = base64.b64encode(_flac_picture(cover).write()).decode("ascii")
            audio.tags["METADATA_BLOCK_PICTURE"] = [encoded]
        audio.save()

    return write


# ID3: MP3, WAV, AIFF.


def _fill_id3(frames: ID3, tags: DeliveryTags, cover: _Cover | None) -> None:
    utf8 = Encoding.UTF8
    texts = (
        (TIT2, tags.title),
        (TPE1, tags.artist),
        (TPE2, tags.album_artist),
        (TALB, tags.album),
        (TRCK, _position(tags.track_number, tags.track_total)),
        (TPOS, _position(tags.disc_number, tags.disc_total)),
        (TDRC, tags.date),
        (TCON, tags.genre),
        (TSRC, tags.isrc),
        (TPUB, tags.label),
        (TCOP, tags.copyright),
    )
    for frame, value in texts:
        if value is not None:
            frames.add(frame(encoding=utf8, text=[value]))
    if cover is not None:
        frames.add(
            APIC(
                encoding=utf8,
                mime=cover.mime,
                type=PictureType.COVER_FRONT,
                desc=COVER_DESCRIPTION,
                data=cover.data,
            )
        )


def _write_mp3(path: Path, tags: DeliveryTags, cover: _Cover | None) -> None:
    # A new tag saved over the file replaces any ID3v2 tag in front; ID3v1 at the end is
    # removed, as it can hold neither UTF-8 nor most of these fields.
    frames = ID3()
    _fill_id3(frames, tags, cover)
    frames.save(path, v1=ID3v1SaveOptions.REMOVE, v2_version=ID3_VERSION)


def _write_id3_chunk(reader: type[WAVE] | type[AIFF]) -> _Writer:
    def write(path: Path, tags: DeliveryTags, cover: _Cover | None) -> None:
        audio = reader(path)
        if audio.tags is None:
            audio.add_tags()
        assert audio.tags is not None
        audio.tags.clear()
        _fill_id3(audio.tags, tags, cover)
        audio.save(v2_version=ID3_VERSION)

    return write


# MP4 (M4A): ALAC, AAC.


def _freeform(text: str) -> MP4FreeForm:
    return MP4FreeForm(text.encode("utf-8"), dataformat=AtomDataType.UTF8)


def _write_mp4(path: Path, tags: DeliveryTags, cover: _Cover | None) -> None:
    audio = MP4(path)
    if audio.tags is None:
        audio.add_tags()
    assert audio.tags is not None
    audio.tags.clear()
    texts = {
        "©nam": tags.title,
        "©ART": tags.artist,
        "aART": tags.album_artist,
        "©alb": tags.album,
        "©day": tags.date,
        "©gen": tags.genre,
        "cprt": tags.copyright,
    }
    for atom, value in texts.items():
        if value is not None:
            audio.tags[atom] = [value]
    # trkn and disk hold (number, total), with 0 for an unknown total.
    if tags.track_number is not None:
        audio.tags["trkn"] = [(tags.track_number, tags.track_total or 0)]
    if tags.disc_number is not None:
        audio.tags["disk"] = [(tags.disc_number, tags.disc_total or 0)]
    for name, value in (("ISRC", tags.isrc), ("LABEL", tags.label)):
        if value is not None:
            audio.tags[ITUNES_FREEFORM + name] = [_freeform(value)]
    if cover is not None:
        audio.tags["covr"] = [MP4Cover(cover.data, _MP4_IMAGE_FORMATS[cover.mime])]
    audio.save()


_WRITERS: dict[str, _Writer] = {
    downloads.FLAC.name: _write_flac,
    downloads.ALAC.name: _write_mp4,
    downloads.WAV.name: _write_id3_chunk(WAVE),
    downloads.AIFF.name: _write_id3_chunk(AIFF),
    downloads.MP3_320.name: _write_mp3,
    downloads.MP3_V0.name: _write_mp3,
    downloads.AAC_256.name: _write_mp4,
    downloads.VORBIS.name: _write_ogg(OggVorbis),
    downloads.OPUS.name: _write_ogg(OggOpus),
}
