"""Composite metadata: the route of a request and the bearer token of a SETUP."""

from __future__ import annotations

from rsocket.extensions.authentication import AuthenticationBearer
from rsocket.extensions.authentication_content import AuthenticationContent
from rsocket.extensions.composite_metadata import CompositeMetadata
from rsocket.extensions.mimetypes import WellKnownMimeTypes
from rsocket.extensions.routing import RoutingMetadata

from schemas.errors import ApiError, ErrorCode, invalid


def _parse(metadata: bytes | None) -> CompositeMetadata:
    composite = CompositeMetadata()
    if metadata:
        try:
            composite.parse(metadata)
        except Exception as exc:  # rsocket-py raises many kinds on bad bytes
            raise invalid(f"malformed composite metadata: {type(exc).__name__}") from None
    return composite


def route_of(metadata: bytes | None) -> str:
    """The first routing tag, or UNKNOWN_ROUTE when there is none."""
    for item in _parse(metadata).items:
        if isinstance(item, RoutingMetadata) and item.tags:
            tag = item.tags[0]
            return (
                bytes(tag).decode("utf-8", "replace")
                if isinstance(tag, bytes | bytearray)
                else str(tag)
            )
    raise ApiError(ErrorCode.UNKNOWN_ROUTE, "request carries no route metadata")


def bearer_token_of(metadata: bytes | None) -> str | None:
    """The bearer token of a SETUP's composite metadata, if any."""
    for item in _parse(metadata).items:
        if isinstance(item, AuthenticationContent) and isinstance(
            item.authentication, AuthenticationBearer
        ):
            token = item.authentication.token
            return (
                bytes(token).decode("utf-8") if isinstance(token, bytes | bytearray) else str(token)
            )
    return None


COMPOSITE = WellKnownMimeTypes.MESSAGE_RSOCKET_COMPOSITE_METADATA.value.name
JSON = WellKnownMimeTypes.APPLICATION_JSON.value.name
