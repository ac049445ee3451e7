"""Reading the studio's rendered forms the way a person sees them."""

import re

FIELD_ERROR = re.compile(r'<p class="field-error" role="alert">(.*?)</p>')


def field_errors(page: str, name: str) -> list[str]:
    """The messages shown under the form field ``name`` (up to the next field)."""
    start = page.index(f'id="f-{name}"')
    end = page.find('<div class="field', start)
    return FIELD_ERROR.findall(page[start : end if end != -1 else len(page)])
