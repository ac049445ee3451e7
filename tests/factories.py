"""factory_boy factories that build real rows in the test's database session."""

from __future__ import annotations

import factory
from argon2 import PasswordHasher
from factory.alchemy import SQLAlchemyModelFactory

from app.accounts.models import User
from app.catalog.models import (
    MAX_TRACK_POSITION,
    Artist,
    PricingMode,
    Release,
    ReleaseType,
    Track,
)
from app.extensions import db
from app.timestamps import utcnow
from tests.conftest import TEST_PASSWORD

# Hashing once keeps the suite fast; every factory user shares TEST_PASSWORD.
_PASSWORD_HASH = PasswordHasher().hash(TEST_PASSWORD)


class _Factory(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "commit"


class UserFactory(_Factory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    display_name = factory.Sequence(lambda n: f"User {n}")
    password_hash = _PASSWORD_HASH
    is_admin = False


class ArtistFactory(_Factory):
    class Meta:
        model = Artist

    owner = factory.SubFactory(UserFactory)
    slug = factory.Sequence(lambda n: f"artist-{n}")
    name = factory.Sequence(lambda n: f"Artist {n}")
    bio = "Makes records."


class ReleaseFactory(_Factory):
    class Meta:
        model = Release

    artist = factory.SubFactory(ArtistFactory)
    title = factory.Sequence(lambda n: f"Release {n}")
    release_type = ReleaseType.ALBUM
    pricing_mode = PricingMode.FIXED
    price_minor = 700
    minimum_price_minor = 700
    currency = "USD"
    published = True
    published_at = factory.LazyFunction(utcnow)


class TrackFactory(_Factory):
    class Meta:
        model = Track

    release = factory.SubFactory(ReleaseFactory)
    title = factory.Sequence(lambda n: f"Track {n}")
    # Track numbers stay valid (1..MAX_TRACK_POSITION) however many tracks a test run makes.
    position = factory.Sequence(lambda n: n % MAX_TRACK_POSITION + 1)
    price_minor = 100
