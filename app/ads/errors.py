"""Ad errors."""

from app.errors import InvalidInput, NotFound


class CampaignNotFound(NotFound):
    code = "campaign_not_found"


class InvalidCampaign(InvalidInput):
    """A campaign the admin typed breaks a rule; ``details`` maps each field to its messages."""

    code = "invalid_campaign"
