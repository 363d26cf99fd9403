"""A local LiveKit server API: the Twirp endpoints `livekit.api.LiveKitAPI` calls for rooms and dispatch.

livekit-api 1.2.2 posts protobuf (`Content-Type: application/protobuf`) to
`/twirp/livekit.<Service>/<Method>` with `Authorization: Bearer <JWT signed with the API secret>`,
reads a protobuf body on 200 and a JSON `{"code", "msg"}` body otherwise. This fake answers in the
encoding it was sent (protobuf or JSON), verifies every token with livekit-api's TokenVerifier and
keeps rooms and dispatches in memory.

    with FakeLiveKit() as fake:
        async with api.LiveKitAPI(fake.url, DEFAULT_LIVEKIT_API_KEY, DEFAULT_LIVEKIT_API_SECRET) as lk: ...
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from livekit.api import TokenVerifier, VideoGrants
from livekit.protocol.agent_dispatch import (
    AgentDispatch,
    AgentDispatchState,
    CreateAgentDispatchRequest,
    ListAgentDispatchRequest,
    ListAgentDispatchResponse,
)
from livekit.protocol.models import Room
from livekit.protocol.room import (
    CreateRoomRequest,
    DeleteRoomRequest,
    DeleteRoomResponse,
    ListRoomsRequest,
    ListRoomsResponse,
)

from ._server import FakeServer, RecordedRequest, bearer_token, header_dict

DEFAULT_LIVEKIT_API_KEY = "APIfakeMockFlow"
DEFAULT_LIVEKIT_API_SECRET = "fake-livekit-secret-that-is-long-enough-for-hs256"
TWIRP_PREFIX = "/twirp"
PROTOBUF_CONTENT_TYPE = "application/protobuf"
JSON_CONTENT_TYPE = "application/json"


def twirp_path(service: str, method: str) -> str:
    """The URL path of a LiveKit Twirp method, e.g. twirp_path("RoomService", "ListRooms")."""
    return f"{TWIRP_PREFIX}/livekit.{service}/{method}"


class TwirpError(Exception):
    """An error answered the Twirp way: an HTTP status with a JSON {"code", "msg"} body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> web.Response:
        return web.json_response({"code": self.code, "msg": self.message}, status=self.status)


@dataclass(frozen=True)
class _Method:
    request_type: type[Message]
    required_grant: str  # a boolean attribute of VideoGrants
    handle: Callable[[Any], Message]


class FakeLiveKit(FakeServer):
    """LiveKit server API stand-in. `rooms` and `dispatches` reflect what the clients created."""

    def __init__(
        self, *, api_key: str = DEFAULT_LIVEKIT_API_KEY, api_secret: str = DEFAULT_LIVEKIT_API_SECRET
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.api_secret = api_secret
        self._rooms: dict[str, Room] = {}
        self._dispatches: list[AgentDispatch] = []
        self._state_lock = threading.Lock()
        self._methods = {
            twirp_path("RoomService", "ListRooms"): _Method(ListRoomsRequest, "room_list", self._list_rooms),
            twirp_path("RoomService", "CreateRoom"): _Method(
                CreateRoomRequest, "room_create", self._create_room
            ),
            twirp_path("RoomService", "DeleteRoom"): _Method(
                DeleteRoomRequest, "room_create", self._delete_room
            ),
            twirp_path("AgentDispatchService", "CreateDispatch"): _Method(
                CreateAgentDispatchRequest, "room_admin", self._create_dispatch
            ),
            twirp_path("AgentDispatchService", "ListDispatch"): _Method(
                ListAgentDispatchRequest, "room_admin", self._list_dispatch
            ),
        }

    @property
    def url(self) -> str:
        """The LiveKit URL for `LiveKitAPI` (http; a `ws://` form of it works too)."""
        return self.origin

    @property
    def ws_url(self) -> str:
        """The same server as a `ws://` URL, the form users paste as LIVEKIT_URL."""
        return f"ws://{self.origin.removeprefix('http://')}"

    @property
    def rooms(self) -> dict[str, Room]:
        """A snapshot of the rooms that exist, by name."""
        with self._state_lock:
            return dict(self._rooms)

    @property
    def dispatches(self) -> list[AgentDispatch]:
        """A snapshot of every dispatch created, oldest first."""
        with self._state_lock:
            return list(self._dispatches)

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(TWIRP_PREFIX + "/{name:.*}", self._twirp)
        return app

    async def _twirp(self, request: web.Request) -> web.Response:
        is_json = request.content_type == JSON_CONTENT_TYPE
        method = self._methods.get(request.path)
        message: Message | None = None
        decode_error: TwirpError | None = None
        if method is not None:
            try:
                message = _decode(method.request_type, await request.read(), is_json)
            except TwirpError as error:
                decode_error = error
        self.requests.record(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=header_dict(request),
                body=None
                if message is None
                else json_format.MessageToDict(message, preserving_proto_field_name=True),
            )
        )
        try:
            if method is None:
                raise TwirpError(404, "bad_route", f"no handler for path {request.path}")
            self._authorize(request, method.required_grant)
            if decode_error is not None:
                raise decode_error
            reply = method.handle(message)
        except TwirpError as error:
            return error.response()
        if is_json:
            return web.json_response(json_format.MessageToDict(reply))
        return web.Response(body=reply.SerializeToString(), content_type=PROTOBUF_CONTENT_TYPE)

    def _authorize(self, request: web.Request, required_grant: str) -> None:
        token = bearer_token(request)
        if not token:
            raise TwirpError(401, "unauthenticated", "no authorization token")
        try:
            claims = TokenVerifier(self.api_key, self.api_secret).verify(token)
        except jwt.PyJWTError as error:
            raise TwirpError(401, "unauthenticated", f"invalid token: {error}") from None
        grants = claims.video or VideoGrants()
        if not getattr(grants, required_grant):
            raise TwirpError(403, "permission_denied", f"the token lacks the {required_grant} grant")

    def _list_rooms(self, request: ListRoomsRequest) -> ListRoomsResponse:
        with self._state_lock:
            rooms = [room for name, room in self._rooms.items() if not request.names or name in request.names]
        return ListRoomsResponse(rooms=rooms)

    def _create_room(self, request: CreateRoomRequest) -> Room:
        if not request.name:
            raise TwirpError(400, "invalid_argument", "room name is required")
        now = time.time()
        with self._state_lock:
            room = self._rooms.get(request.name)
            if room is None:
                room = Room(
                    sid=f"RM_{uuid.uuid4().hex[:12]}",
                    name=request.name,
                    empty_timeout=request.empty_timeout,
                    departure_timeout=request.departure_timeout,
                    max_participants=request.max_participants,
                    metadata=request.metadata,
                    creation_time=int(now),
                    creation_time_ms=int(now * 1000),
                )
                self._rooms[request.name] = room
        return room

    def _delete_room(self, request: DeleteRoomRequest) -> DeleteRoomResponse:
        with self._state_lock:
            if self._rooms.pop(request.room, None) is None:
                raise TwirpError(404, "not_found", "requested room does not exist")
        return DeleteRoomResponse()

    def _create_dispatch(self, request: CreateAgentDispatchRequest) -> AgentDispatch:
        if not request.room:
            raise TwirpError(400, "invalid_argument", "room is required")
        dispatch = AgentDispatch(
            id=f"AD_{uuid.uuid4().hex[:12]}",
            agent_name=request.agent_name,
            room=request.room,
            metadata=request.metadata,
            state=AgentDispatchState(created_at=time.time_ns()),
        )
        with self._state_lock:
            self._dispatches.append(dispatch)
        return dispatch

    def _list_dispatch(self, request: ListAgentDispatchRequest) -> ListAgentDispatchResponse:
        with self._state_lock:
            matching = [
                dispatch
                for dispatch in self._dispatches
                if dispatch.room == request.room
                and (not request.dispatch_id or dispatch.id == request.dispatch_id)
            ]
        return ListAgentDispatchResponse(agent_dispatches=matching)


def _decode(request_type: type[Message], raw: bytes, is_json: bool) -> Message:
    message = request_type()
    try:
        if is_json:
            json_format.Parse(raw or b"{}", message)
        else:
            message.ParseFromString(raw)
    except (DecodeError, json_format.ParseError) as error:
        raise TwirpError(400, "malformed", f"the request body could not be decoded: {error}") from None
    return message
