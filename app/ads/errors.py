"""Ad errors."""

from app.errors import InvalidInput, NotFound


class CampaignNotFound(NotFound):
    code = "campaign_not_found"


class InvalidCampaign(InvalidInput):
    """A campaign the admin typed breaks a rule; ``details`` maps each field to its messages."""

    code = "invalid_campaign"


class InvalidAdImage(InvalidInput):
    """A campaign image that cannot be shown; the message says why, for people."""

    code = "invalid_ad_image"
