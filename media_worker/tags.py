"""Reading tags with mutagen: ID3 (MP3, WAV, AIFF, DSF, DSDIFF, and in front of raw ADTS AAC),
Vorbis comments (FLAC, Ogg FLAC, Ogg Vorbis, Opus), MP4 atoms (M4A), APEv2 (WavPack, Monkey's
Audio, TAK), ASF attributes (WMA), and a WAV's RIFF INFO list.

Tags only pre-fill what the artist then edits, so every value is read leniently and anything
odd becomes ``None`` rather than an error. Each format's tags are first gathered under common
names (``_Raw``), then one set of parsers turns them into ``Tags``.

Rules applied to every string: NUL bytes split a value into parts (ID3v2.4 separates
multiple values with NUL, and stray NULs pad many tags); empty parts are dropped; a
single-valued field takes the first part left.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import math
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import mutagen
from mutagen.apev2 import APEBinaryValue, APETextValue, APEv2
from mutagen.asf import ASFTags
from mutagen.flac import FLAC, Picture
from mutagen.id3 import ID3
from mutagen.mp4 import MP4, MP4Cover, MP4FreeForm
from mutagen.wave import WAVE

from media_worker.covers import image_mime, image_size
from media_worker.probe import open_nameless

FRONT_COVER = 3  # the ID3/FLAC picture type "Cover (front)"
BACK_COVER = 4  # "Cover (back)"
MAX_POSITION = 9999  # a larger track or disc number is junk
MAX_BPM = 999
R128_GAIN_SCALE = 256  # R128_*_GAIN are Q7.8 fixed point
MAX_INFO_CHUNK_BYTES = 1024 * 1024
MIN_YEAR = 1000
MAX_YEAR = 2999
OTHER_PICTURE = 0  # "Other"

_ID3_TEXT_FRAMES = {
    "TIT2": "title",
    "TPE1": "artist",
    "TPE2": "albumartist",
    "TALB": "album",
    "TRCK": "tracknumber",
    "TPOS": "discnumber",
    "TDRC": "date",
    "TDRL": "releasedate",
    "TYER": "year",
    "TDOR": "originaldate",
    "TSRC": "isrc",
    "TCOM": "composer",
    "TPUB": "label",
    "TCOP": "copyright",
    "TBPM": "bpm",
}
_VORBIS_ALIASES = {
    "album artist": "albumartist",
    "album_artist": "albumartist",
    "totaltracks": "tracktotal",
    "totaldiscs": "disctotal",
    "organization": "label",
    "publisher": "label",
    "unsyncedlyrics": "lyrics",
    "unsynced lyrics": "lyrics",
}
_MP4_ATOMS = {
    "©nam": "title",
    "©ART": "artist",
    "aART": "albumartist",
    "©alb": "album",
    "©day": "date",
    "©gen": "genre",
    "©wrt": "composer",
    "cprt": "copyright",
    "©lyr": "lyrics",
}
_RIFF_INFO = {
    b"INAM": "title",
    b"IART": "artist",
    b"IPRD": "album",
    b"ICRD": "date",
    b"IGNR": "genre",
    b"ICOP": "copyright",
    b"ITRK": "tracknumber",
    b"IPRT": "tracknumber",
    b"IMUS": "composer",
}
# APEv2 items as foobar2000, Mp3tag and MusicBrainz Picard name them (matched lower-case);
# anything else goes through the Vorbis names.
_APE_ITEMS = {
    "track": "tracknumber",
    "disc": "discnumber",
    "year": "date",
}
_APE_COVER_TYPES = {"cover art (front)": FRONT_COVER, "cover art (back)": BACK_COVER}
_ASF_ATTRIBUTES = {
    "title": "title",
    "author": "artist",
    "wm/albumartist": "albumartist",
    "wm/albumtitle": "album",
    "wm/tracknumber": "tracknumber",
    "wm/partofset": "discnumber",
    "wm/year": "date",
    "wm/genre": "genre",
    "wm/isrc": "isrc",
    "wm/composer": "composer",
    "wm/publisher": "label",
    "copyright": "copyright",
    "wm/beatsperminute": "bpm",
    "wm/lyrics": "lyrics",
}
_ASF_PICTURE = "wm/picture"
_WM_PICTURE_HEADER = struct.Struct("<BI")  # picture type, data length
_UTF16_NUL = b"\x00\x00"
_MP4_IMAGE_MIME = {MP4Cover.FORMAT_JPEG: "image/jpeg", MP4Cover.FORMAT_PNG: "image/png"}
_RTNG_EXPLICIT: dict[int | None, bool] = {1: True, 4: True, 2: False}  # iTunes rtng atom
_ADVISORY = {"1": True, "4": True, "2": False}
_TRUTHY = frozenset({"1", "true", "yes", "y", "explicit", "e"})
_FALSY = frozenset({"0", "false", "no", "n", "clean", "c"})

_POSITION = re.compile(r"^\s*(\d+)\s*(?:(?:/|of)\s*(\d+))?", re.IGNORECASE)
_NUMBER = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)")
_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")
_ISO_DATE = re.compile(r"^(\d{4})(?:[-/.](\d{1,2})(?:[-/.](\d{1,2}))?)?(?!\d)")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_ANY_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")
_ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")


@dataclass(frozen=True)
class CoverArt:
    data: bytes
    mime: str
    picture_type: int  # ID3/FLAC picture type; 3 is the front cover
    width: int | None
    height: int | None


@dataclass(frozen=True)
class Tags:
    """Tags found in a file; every field is optional."""

    title: str | None = None
    artists: tuple[str, ...] = ()
    album_artist: str | None = None
    album: str | None = None
    track_number: int | None = None
    track_total: int | None = None
    disc_number: int | None = None
    disc_total: int | None = None
    date: str | None = None  # ISO 8601 as precise as the tag: "2021", "2021-03", "2021-03-04"
    year: int | None = None
    genre: str | None = None
    isrc: str | None = None  # 12 characters, no hyphens
    composer: str | None = None
    label: str | None = None
    copyright: str | None = None
    bpm: int | None = None
    explicit: bool | None = None
    lyrics: str | None = None
    replaygain_track_gain_db: float | None = None
    replaygain_track_peak: float | None = None
    replaygain_album_gain_db: float | None = None
    replaygain_album_peak: float | None = None
    r128_track_gain_db: float | None = None
    r128_album_gain_db: float | None = None
    cover: CoverArt | None = None


@dataclass
class _Raw:
    """Tag values gathered under common lower-case names, before parsing."""

    text: dict[str, list[str]] = field(default_factory=dict)
    pictures: list[tuple[bytes, str, int]] = field(default_factory=list)  # data, mime, type
    track: tuple[int | None, int | None] | None = None  # MP4's (number, total) atoms
    disc: tuple[int | None, int | None] | None = None
    bpm: int | None = None
    rating: int | None = None

    def add(self, key: str, values: Iterable[Any], *, replace: bool = False) -> None:
        parts = [part for value in values for part in _parts(value)]
        if parts and (replace or key not in self.text):
            self.text[key] = parts
        elif parts:
            self.text[key].extend(parts)

    def first(self, *keys: str) -> str | None:
        for key in keys:
            if self.text.get(key):
                return self.text[key][0]
        return None


_MUTAGEN_ERRORS = (mutagen.MutagenError, OSError, ValueError, EOFError, struct.error)


def read_tags(path: Path | str) -> Tags:
    """The tags of an audio file; an empty ``Tags`` if mutagen cannot read the file at all."""
    raw = _Raw()
    try:
        with open_nameless(path) as handle:
            try:
                audio = mutagen.File(handle)
            except _MUTAGEN_ERRORS:
                audio = None
            if isinstance(audio, WAVE):
                _read_riff_info(handle, raw)
            tags = audio.tags if audio is not None else _bare_tags(handle)
    except _MUTAGEN_ERRORS:
        return Tags()
    if isinstance(tags, ID3):
        _read_id3(tags, raw)
    elif isinstance(tags, APEv2):
        _read_ape(tags, raw)
    elif isinstance(tags, ASFTags):
        _read_asf(tags, raw)
    elif isinstance(audio, MP4) and tags is not None:
        _read_mp4(tags, raw)
    elif tags is not None:
        _read_vorbis(tags, raw)
    if isinstance(audio, FLAC):
        raw.pictures.extend((p.data, p.mime, int(p.type)) for p in audio.pictures)
    return _build(raw)


def _bare_tags(handle: BinaryIO) -> ID3 | APEv2 | None:
    """A tag block on a stream mutagen cannot name from its content: raw ADTS AAC, which
    taggers give an ID3v2 block in front or an APEv2 block at the end. (With an ID3 block
    in front, mutagen takes the file for an MP3 and fails to find MPEG frames.)"""
    for reader in (ID3, APEv2):
        handle.seek(0)
        try:
            return reader(handle)
        except _MUTAGEN_ERRORS:
            continue
    return None


def _read_id3(tags: ID3, raw: _Raw) -> None:
    for frame in tags.values():
        frame_id = frame.FrameID
        if frame_id in _ID3_TEXT_FRAMES:
            raw.add(_ID3_TEXT_FRAMES[frame_id], frame.text, replace=True)
        elif frame_id == "TCON":
            raw.add("genre", frame.genres, replace=True)
        elif frame_id == "TXXX":
            raw.add(_vorbis_key(frame.desc), frame.text)
        elif frame_id == "USLT":
            raw.add("lyrics", [frame.text])
        elif frame_id == "APIC" and frame.mime != "-->":  # "-->" marks a URL, not an image
            raw.pictures.append((frame.data, frame.mime, int(frame.type)))


def _read_vorbis(tags: Any, raw: _Raw) -> None:
    for key, values in tags.items():
        name = _vorbis_key(key)
        if name == "metadata_block_picture":
            for encoded in values:
                picture = _flac_picture(encoded)
                if picture is not None:
                    raw.pictures.append((picture.data, picture.mime, int(picture.type)))
        elif name == "coverart":
            mime = _first_text(tags.get("coverartmime", [])) or "image/jpeg"
            for encoded in values:
                data = _b64(encoded)
                if data:
                    raw.pictures.append((data, mime, FRONT_COVER))
        else:
            raw.add(name, values)


def _read_ape(tags: APEv2, raw: _Raw) -> None:
    for key, value in tags.items():
        name = key.lower()
        if isinstance(value, APEBinaryValue) and name.startswith("cover art"):
            # The item is the picture's file name, a NUL, then the image.
            _, _, data = value.value.partition(b"\x00")
            picture_type = _APE_COVER_TYPES.get(name, OTHER_PICTURE)
            raw.pictures.append((data, image_mime(data) or "", picture_type))
        elif isinstance(value, APETextValue):
            raw.add(_APE_ITEMS.get(name) or _vorbis_key(key), list(value))


def _read_asf(tags: ASFTags, raw: _Raw) -> None:
    for key, values in tags.as_dict().items():
        name = key.lower()
        if name == _ASF_PICTURE:
            for value in values:
                picture = _wm_picture(bytes(value.value))
                if picture is not None:
                    raw.pictures.append(picture)
        else:
            texts = [str(value.value) for value in values]
            raw.add(_ASF_ATTRIBUTES.get(name) or _vorbis_key(key), texts)


def _wm_picture(blob: bytes) -> tuple[bytes, str, int] | None:
    """(data, mime, type) of a WM/Picture value, or None if it is malformed."""
    try:
        picture_type, size = _WM_PICTURE_HEADER.unpack_from(blob)
    except struct.error:
        return None
    mime, rest = _utf16_until_nul(blob[_WM_PICTURE_HEADER.size :])
    _description, data = _utf16_until_nul(rest)
    return (data[:size], mime, picture_type) if data else None


def _utf16_until_nul(data: bytes) -> tuple[str, bytes]:
    """A NUL-ended UTF-16LE string at the start of ``data``, and what follows it."""
    for end in range(0, len(data) - 1, 2):
        if data[end : end + 2] == _UTF16_NUL:
            return data[:end].decode("utf-16-le", "replace"), data[end + 2 :]
    return "", b""


def _read_mp4(tags: Any, raw: _Raw) -> None:
    for key, value in tags.items():
        values = value if isinstance(value, list) else [value]
        if key in _MP4_ATOMS:
            raw.add(_MP4_ATOMS[key], values)
        elif key == "trkn" and values:
            raw.track = _pair(values[0])
        elif key == "disk" and values:
            raw.disc = _pair(values[0])
        elif key == "tmpo" and values:
            raw.bpm = _int_or_none(values[0])
        elif key == "rtng" and values:
            raw.rating = _int_or_none(values[0])
        elif key == "covr":
            for cover in values:
                mime = _MP4_IMAGE_MIME.get(getattr(cover, "imageformat", None), "image/jpeg")
                raw.pictures.append((bytes(cover), mime, FRONT_COVER))
        elif key.startswith("----:"):
            name = key.rsplit(":", 1)[-1]
            raw.add(_vorbis_key(name), [_freeform_text(v) for v in values])


def _read_riff_info(handle: BinaryIO, raw: _Raw) -> None:
    """Fill ``raw`` from a WAV's LIST/INFO chunk (what most DAWs write instead of ID3)."""
    handle.seek(0)
    header = handle.read(12)
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return
    while chunk := handle.read(8):
        if len(chunk) < 8:
            return
        chunk_id, size = struct.unpack("<4sI", chunk)
        padded = size + (size & 1)
        if chunk_id != b"LIST" or size > MAX_INFO_CHUNK_BYTES:
            handle.seek(padded, 1)
            continue
        body = handle.read(padded)
        if body[:4] == b"INFO":
            _parse_info_list(body[4:size], raw)


def _parse_info_list(body: bytes, raw: _Raw) -> None:
    offset = 0
    while offset + 8 <= len(body):
        sub_id, size = struct.unpack_from("<4sI", body, offset)
        value = body[offset + 8 : offset + 8 + size]
        offset += 8 + size + (size & 1)
        key = _RIFF_INFO.get(sub_id)
        if key is not None and key not in raw.text:
            raw.add(key, [_decode(value)])


def _build(raw: _Raw) -> Tags:
    track = raw.track or _position(raw.first("tracknumber"))
    disc = raw.disc or _position(raw.first("discnumber"))
    date, year = _first_date(
        raw.first(key) for key in ("date", "releasedate", "year", "originaldate")
    )
    explicit = _RTNG_EXPLICIT.get(raw.rating)
    if explicit is None:
        explicit = _advisory(raw.first("itunesadvisory"), raw.first("explicit"))
    return Tags(
        title=raw.first("title"),
        artists=tuple(dict.fromkeys(raw.text.get("artists") or raw.text.get("artist") or [])),
        album_artist=raw.first("albumartist"),
        album=raw.first("album"),
        track_number=track[0],
        track_total=track[1] or _position(raw.first("tracktotal"))[0],
        disc_number=disc[0],
        disc_total=disc[1] or _position(raw.first("disctotal"))[0],
        date=date,
        year=year,
        genre=raw.first("genre"),
        isrc=_isrc(raw.first("isrc")),
        composer=raw.first("composer"),
        label=raw.first("label"),
        copyright=raw.first("copyright"),
        bpm=_bpm(raw.bpm if raw.bpm is not None else raw.first("bpm")),
        explicit=explicit,
        lyrics=raw.first("lyrics"),
        replaygain_track_gain_db=_number(raw.first("replaygain_track_gain")),
        replaygain_track_peak=_peak(raw.first("replaygain_track_peak")),
        replaygain_album_gain_db=_number(raw.first("replaygain_album_gain")),
        replaygain_album_peak=_peak(raw.first("replaygain_album_peak")),
        r128_track_gain_db=_r128(raw.first("r128_track_gain")),
        r128_album_gain_db=_r128(raw.first("r128_album_gain")),
        cover=_best_cover(raw.pictures),
    )


# Value parsers: each takes what a tag held and returns a clean value or None.


def _parts(value: Any) -> list[str]:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return [part.strip() for part in text.split("\x00") if part.strip()]


def _position(text: str | None) -> tuple[int | None, int | None]:
    """"3", "03", "3/12" or "3 of 12" -> (3, 12); zero, negative or absurd numbers -> None."""
    match = _POSITION.match(text or "")
    if match is None:
        return None, None
    number, total = match.groups()
    return _positive(int(number)), _positive(int(total)) if total else None


def _pair(value: Any) -> tuple[int | None, int | None]:
    if isinstance(value, tuple) and len(value) == 2:
        return _positive(_int_or_none(value[0])), _positive(_int_or_none(value[1]))
    return _positive(_int_or_none(value)), None


def _positive(number: int | None) -> int | None:
    return number if number is not None and 0 < number <= MAX_POSITION else None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _first_date(candidates: Iterable[str | None]) -> tuple[str | None, int | None]:
    for text in candidates:
        parsed = _date(text)
        if parsed[1] is not None:
            return parsed
    return None, None


def _date(text: str | None) -> tuple[str | None, int | None]:
    """A lenient date: "2021", "2021-03", "2021-03-04", "2021/03/04", "20210304",
    "2021-03-04T10:00:00" keep their precision; a year anywhere else ("March 2021",
    "04.03.2021") is kept alone; an impossible month or day is dropped."""
    text = (text or "").strip()
    match = _COMPACT_DATE.match(text) or _ISO_DATE.match(text)
    if match is None:
        years = [int(y) for y in _ANY_YEAR.findall(text) if MIN_YEAR <= int(y) <= MAX_YEAR]
        return (str(years[0]), years[0]) if years else (None, None)
    year_text, month_text, day_text = match.groups()
    year = int(year_text)
    if not MIN_YEAR <= year <= MAX_YEAR:
        return None, None
    if month_text is None or not 1 <= int(month_text) <= 12:
        return f"{year:04d}", year
    month = int(month_text)
    if day_text is not None:
        try:
            return datetime.date(year, month, int(day_text)).isoformat(), year
        except ValueError:
            pass
    return f"{year:04d}-{month:02d}", year


def _isrc(text: str | None) -> str | None:
    code = re.sub(r"[\s-]", "", text or "").upper()
    return code if _ISRC.match(code) else None


def _number(text: str | None) -> float | None:
    """The leading number of e.g. "-6.52 dB"; None if there is none."""
    match = _NUMBER.match(text or "")
    if match is None:
        return None
    value = float(match.group(1))
    return value if math.isfinite(value) else None


def _peak(text: str | None) -> float | None:
    value = _number(text)
    return value if value is not None and value >= 0 else None


def _bpm(value: Any) -> int | None:
    number = value if isinstance(value, int) else _number(value)
    if number is None:
        return None
    bpm = round(number)
    return bpm if 0 < bpm <= MAX_BPM else None


def _r128(text: str | None) -> float | None:
    if text is None or not _INTEGER.match(text):
        return None
    return int(text) / R128_GAIN_SCALE


def _advisory(advisory: str | None, explicit: str | None) -> bool | None:
    if advisory is not None and advisory.strip() in _ADVISORY:
        return _ADVISORY[advisory.strip()]
    flag = (explicit or "").strip().lower()
    if flag in _TRUTHY:
        return True
    if flag in _FALSY:
        return False
    return None


def _best_cover(pictures: list[tuple[bytes, str, int]]) -> CoverArt | None:
    """The largest readable front cover, else the largest readable picture of any type."""
    covers = []
    for data, mime, picture_type in pictures:
        size = image_size(data)
        if size is not None:
            covers.append(CoverArt(data, mime or "image/jpeg", picture_type, *size))
    fronts = [cover for cover in covers if cover.picture_type == FRONT_COVER]
    return max(fronts or covers, key=_cover_size, default=None)


def _cover_size(cover: CoverArt) -> tuple[int, int]:
    return (cover.width or 0) * (cover.height or 0), len(cover.data)


def _vorbis_key(key: str) -> str:
    name = "".join(_parts(key)).lower()
    return _VORBIS_ALIASES.get(name, name)


def _first_text(values: Iterable[Any]) -> str | None:
    parts = [part for value in values for part in _parts(value)]
    return parts[0] if parts else None


def _flac_picture(encoded: Any) -> Picture | None:
    data = _b64(encoded)
    if not data:
        return None
    try:
        return Picture(data)
    except (mutagen.MutagenError, struct.error, ValueError, EOFError):
        return None


def _b64(encoded: Any) -> bytes | None:
    try:
        return base64.b64decode(str(encoded).strip())
    except (binascii.Error, ValueError):
        return None


def _freeform_text(value: Any) -> str:
    return _decode(bytes(value)) if isinstance(value, (bytes, MP4FreeForm)) else str(value)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")
