"""GET /v1/projects/{writeKey}/settings: what analytics.js loads from its CDN before it sends.

analytics.js (@segment/analytics-next) fetches `${cdnURL}/v1/projects/${writeKey}/settings`
and posts every event to `${protocol}://${apiHost}/<t|i|p|s|g|a>`, with `apiHost` and
`protocol` from `integrations["Segment.io"]` and the write key it sends from its `apiKey`. So
the document names this host: a page that points `cdnURL` here needs no other change.
"""

from __future__ import annotations

from typing import Any

from dedup.adapters.inbound.http.auth import WriteKeys
from dedup.adapters.inbound.http.errors import RequestRejectedError
from litestar import Controller, Request, get
from litestar.params import FromPath


def settings_document(*, write_key: str, api_host: str, protocol: str) -> dict[str, Any]:
    """The settings of a source whose one destination is dedup, at api_host (`host:port/v1`)."""
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": api_host,
                "protocol": protocol,
                "unbundledIntegrations": [],
                "addBundledMetadata": True,
                "maybeBundledConfigIds": {},
            }
        },
        "plan": {"track": {"__default": {"enabled": True, "integrations": {}}}},
        "enabledMiddleware": {},
        "middlewareSettings": {},
        "remotePlugins": [],
        "legacyVideoPluginsEnabled": False,
        # The SDK's own telemetry would go to `${host}/m`: off, dedup stores events only.
        "metrics": {"sampleRate": 0},
    }


class CdnSettingsController(Controller):
    """The one document analytics.js needs before it tracks anything."""

    path = "/v1/projects"
    tags = ["tracking"]  # noqa: RUF012 - Litestar reads this class attribute

    @get(
        "/{write_key:str}/settings",
        summary="analytics.js settings naming this host as its API host",
        description="404 for a write key DEDUP_API_KEYS does not know.",
    )
    async def cdn_settings(
        self, request: Request[Any, Any, Any], write_key: FromPath[str]
    ) -> dict[str, Any]:
        write_keys: WriteKeys = request.app.state.write_keys
        if write_keys.source_named_by(write_key) is None:
            raise RequestRejectedError(404, "unknown_write_key", "no source has this write key")
        host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
        return settings_document(
            write_key=write_key, api_host=f"{host}/v1", protocol=request.url.scheme
        )
