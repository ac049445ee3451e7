"""The OpenAPI document against a list of the API's operations written out by hand.

The document is generated from the routes, so comparing it with the routes would prove
nothing; this list is kept by people. Adding, removing or renaming an endpoint means
editing it, which is the point.
"""

from openapi_spec_validator import validate

EXPECTED_OPERATIONS = {
    # meta (app/api/__init__.py)
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/docs"),
    # accounts (app/accounts/api.py)
    ("GET", "/api/v1/me"),
    ("PATCH", "/api/v1/me"),
    ("GET", "/api/v1/tokens"),
    ("POST", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/{token_id}"),
    # artists, releases, tracks (app/catalog/api.py)
    ("GET", "/api/v1/artists"),
    ("POST", "/api/v1/artists"),
    ("GET", "/api/v1/artists/{slug}"),
    ("PATCH", "/api/v1/artists/{slug}"),
    ("DELETE", "/api/v1/artists/{slug}"),
    ("PUT", "/api/v1/artists/{slug}/avatar"),
    ("DELETE", "/api/v1/artists/{slug}/avatar"),
    ("GET", "/api/v1/artists/{slug}/releases"),
    ("GET", "/api/v1/releases"),
    ("POST", "/api/v1/releases"),
    ("GET", "/api/v1/releases/{release_id}"),
    ("PATCH", "/api/v1/releases/{release_id}"),
    ("DELETE", "/api/v1/releases/{release_id}"),
    ("PUT", "/api/v1/releases/{release_id}/cover"),
    ("DELETE", "/api/v1/releases/{release_id}/cover"),
    ("GET", "/api/v1/releases/{release_id}/tracks"),
    ("POST", "/api/v1/releases/{release_id}/tracks"),
    ("GET", "/api/v1/tracks/{track_id}"),
    ("PATCH", "/api/v1/tracks/{track_id}"),
    ("DELETE", "/api/v1/tracks/{track_id}"),
    # uploads (app/ingest/api.py)
    ("POST", "/api/v1/releases/{release_id}/uploads"),
    ("GET", "/api/v1/releases/{release_id}/uploads"),
    ("GET", "/api/v1/uploads/{upload_id}"),
    ("PATCH", "/api/v1/uploads/{upload_id}"),
    ("DELETE", "/api/v1/uploads/{upload_id}"),
    # orders (app/commerce/api.py)
    ("POST", "/api/v1/orders"),
    ("GET", "/api/v1/orders"),
    ("GET", "/api/v1/orders/{public_id}"),
    # library (app/library/api.py)
    ("GET", "/api/v1/library"),
    ("GET", "/api/v1/library/items/{item_id}/downloads"),
    ("POST", "/api/v1/library/items/{item_id}/downloads"),
    # plays (app/plays/api.py)
    ("POST", "/api/v1/plays"),
    ("POST", "/api/v1/plays/{token}/heartbeat"),
    # ads (app/ads/api.py)
    ("POST", "/api/v1/ads/impressions"),
    # payouts (app/payouts/api.py)
    ("GET", "/api/v1/artists/{slug}/payouts"),
    # statements (app/statements/api.py)
    ("GET", "/api/v1/artists/{slug}/statements"),
    ("GET", "/api/v1/artists/{slug}/statements/{period}"),
}


def _documented(spec: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, operations in spec["paths"].items() for method in operations}


def test_openapi_document_is_valid(client):
    validate(client.get("/api/v1/openapi.json").json)


def test_openapi_document_lists_exactly_the_expected_operations(client):
    documented = _documented(client.get("/api/v1/openapi.json").json)
    assert documented - EXPECTED_OPERATIONS == set(), "documented but not expected"
    assert EXPECTED_OPERATIONS - documented == set(), "expected but not documented"


def test_every_expected_operation_is_routed(app):
    adapter = app.url_map.bind("localhost")
    for method, path in EXPECTED_OPERATIONS:
        concrete = path.replace("{slug}", "band").replace("{upload_id}", "u1")
        concrete = concrete.replace("{release_id}", "1").replace("{track_id}", "1").replace("{token_id}", "1")
        concrete = concrete.replace("{public_id}", "abc").replace("{item_id}", "1")
        concrete = concrete.replace("{token}", "t0k3n").replace("{period}", "2026-11")
        endpoint, _ = adapter.match(concrete, method=method)
        assert endpoint.split(".")[0].endswith("api"), (method, path, endpoint)


def test_the_docs_page_names_every_path(client):
    docs = client.get("/api/v1/docs").get_data(as_text=True)
    assert all(path in docs for _, path in EXPECTED_OPERATIONS)


def test_ids_are_documented_with_the_range_a_route_accepts(client):
    parameters = client.get("/api/v1/openapi.json").json["paths"]["/api/v1/releases/{release_id}"]["get"]["parameters"]
    assert parameters[0]["schema"] == {"type": "integer", "format": "int32", "minimum": 0, "maximum": 2**31 - 1}
