"""LiveKit access tokens for one interview room, minted with the user's own API key and secret.

The candidate's token is the narrowest that a voice interview allows: join this one room, publish
the microphone only, subscribe, and send data (the End and Skip buttons are RPC calls, which travel
as data packets). No admin, create, list or record rights; an opaque identity; ten minutes at most,
after which the page fetches a fresh one to rejoin. The agent's token lasts the interview's maximum
length and may set its own attributes (stage, deadline, status).
"""

from __future__ import annotations

from datetime import timedelta

from livekit import api

CANDIDATE_TOKEN_TTL = timedelta(minutes=10)
AGENT_TOKEN_GRACE = timedelta(minutes=5)


def candidate_identity(interview_id: str) -> str:
    """An opaque participant identity: no name or email ever reaches the room."""
    return f"candidate-{interview_id[:12]}"


def agent_identity(interview_id: str) -> str:
    return f"interviewer-{interview_id[:12]}"


def _room_grants(room_name: str, *, agent: bool) -> api.VideoGrants:
    """Join one room, publish the microphone only, subscribe, send data; no admin rights at all.

    Only the agent may set its own attributes (stage, deadline, status) and is marked as an agent.
    """
    return api.VideoGrants(
        room_join=True,
        room=room_name,
        agent=True if agent else None,
        can_publish=True,
        can_publish_sources=["microphone"],
        can_subscribe=True,
        can_publish_data=True,
        can_update_own_metadata=agent,
        room_create=False,
        room_list=False,
        room_record=False,
        room_admin=False,
    )


def candidate_token(api_key: str, api_secret: str, room_name: str, interview_id: str) -> str:
    """A join-only, microphone-only token for the candidate, valid for ten minutes."""
    return (
        api.AccessToken(api_key, api_secret)
        .with_identity(candidate_identity(interview_id))
        .with_ttl(CANDIDATE_TOKEN_TTL)
        .with_grants(_room_grants(room_name, agent=False))
        .to_jwt()
    )


def agent_token(api_key: str, api_secret: str, room_name: str, interview_id: str, max_duration_s: int) -> str:
    """The interviewer's token for this room, valid for the interview's maximum length."""
    return (
        api.AccessToken(api_key, api_secret)
        .with_identity(agent_identity(interview_id))
        .with_name("Interviewer")
        .with_kind("agent")
        .with_ttl(timedelta(seconds=max_duration_s) + AGENT_TOKEN_GRACE)
        .with_grants(_room_grants(room_name, agent=True))
        .to_jwt()
    )
