"""What a message's files are: one media (a photo, a video, a document, an animation, an audio
file or a voice note) or an album of several, named by URL or by file_id, with Telegram's
rules for each. Part of ``spec.content`` (:mod:`herald.core.contents`), whose rules count
these files' URLs into the content's size caps.
"""

from __future__ import annotations

import enum
from typing import Annotated, ClassVar

from pydantic import Field

from herald.core.contracts import CelRule, Contract, cel_string, matches

__all__ = [
    "ALBUM_MAX_ITEMS",
    "ALBUM_MIN_ITEMS",
    "CAPTION_ABOVE_TYPES",
    "MEDIA_URL_PATTERN",
    "URL_MAX_LENGTH",
    "Album",
    "AlbumItem",
    "AlbumMediaType",
    "Media",
    "MediaType",
    "album_homogeneous",
]

URL_MAX_LENGTH = 2048
MEDIA_URL_PATTERN = r"^https?://\S+$"
_FILE_ID_MAX_LENGTH = 256
# sendMediaGroup's own bounds on an album.
ALBUM_MIN_ITEMS = 2
ALBUM_MAX_ITEMS = 10


class MediaType(enum.StrEnum):
    """Which Bot API method sends the media."""

    PHOTO = "photo"
    VIDEO = "video"
    DOCUMENT = "document"
    ANIMATION = "animation"
    AUDIO = "audio"
    VOICE = "voice"


class AlbumMediaType(enum.StrEnum):
    """What an album item may be: sendMediaGroup takes no animations and no voice notes."""

    PHOTO = "photo"
    VIDEO = "video"
    DOCUMENT = "document"
    AUDIO = "audio"


# Media whose caption Telegram can show above it (show_caption_above_media).
CAPTION_ABOVE_TYPES = frozenset({"photo", "video", "animation"})


def _file_rules(what: str) -> tuple[CelRule, ...]:
    """The rules of a file named by URL or by file_id (a media, an album item)."""
    return (
        CelRule(
            rule="has(self.url) != has(self.fileId)",
            message=f"{what} needs exactly one of url or fileId",
            holds=lambda media: (media.url is None) != (media.file_id is None),
        ),
        CelRule(
            rule=f"!has(self.url) || self.url.matches({cel_string(MEDIA_URL_PATTERN)})",
            message=f"{what} url must start with https:// or http://",
            field_path=".url",
            holds=lambda media: media.url is None or matches(MEDIA_URL_PATTERN, media.url),
        ),
    )


# The two ways to name a file, shared by media and album items (each declares its type first,
# as a reader of the schema looks for it).
_FileUrl = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=URL_MAX_LENGTH,
        description=(
            "Public https:// or http:// URL that Telegram downloads the media from. Telegram "
            "fetches it once and reuses the file for the remaining recipients. Exactly one "
            "of url and fileId."
        ),
    ),
]
_FileId = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=_FILE_ID_MAX_LENGTH,
        description=(
            "file_id of a file already on Telegram's servers, as seen by this bot (file ids "
            "are per bot). Exactly one of url and fileId."
        ),
    ),
]


class Media(Contract):
    """A photo, video, document, animation, audio file or voice note; spec.content.text
    becomes its caption."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = _file_rules("media")

    type: MediaType = Field(
        description=(
            "Kind of media, which picks the Bot API method: photo (sendPhoto), video "
            "(sendVideo), document (sendDocument), animation (sendAnimation, GIF or "
            "soundless MP4), audio (sendAudio, a music file shown with its player) or "
            "voice (sendVoice, a voice note: OGG/Opus, MP3 or M4A)."
        ),
    )
    url: _FileUrl = None
    file_id: _FileId = None


class AlbumItem(Contract):
    """One photo, video, document or audio file of an album (Bot API sendMediaGroup)."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = _file_rules("an album item")

    type: AlbumMediaType = Field(
        description=(
            "Kind of the item: photo, video, document or audio. Photos and videos mix in "
            "one album; documents and audio files each form albums of their own kind."
        ),
    )
    url: _FileUrl = None
    file_id: _FileId = None


def album_homogeneous(album: tuple[AlbumItem, ...]) -> bool:
    kinds = {item.type for item in album}
    visual = {AlbumMediaType.PHOTO, AlbumMediaType.VIDEO}
    return kinds <= visual or kinds in ({AlbumMediaType.DOCUMENT}, {AlbumMediaType.AUDIO})


Album = Annotated[
    tuple[AlbumItem, ...],
    Field(
        min_length=ALBUM_MIN_ITEMS,
        max_length=ALBUM_MAX_ITEMS,
        description=(
            f"An album (Bot API sendMediaGroup): {ALBUM_MIN_ITEMS} to {ALBUM_MAX_ITEMS} "
            "photos and videos, or as many documents, or as many audio files, delivered as "
            "one group. content.text is the caption of the first item, which Telegram shows "
            "as the album's. An album carries no buttons. Excludes media and copyFrom."
        ),
    ),
]
