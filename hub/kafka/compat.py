"""Every use of aiokafka's private parts, in one place: what aiokafka does not offer publicly and the hub needs.
Each is tied to the aiokafka version in uv.lock; a new aiokafka is checked here first.

- `describe_groups`: DescribeGroups through the admin client's connection (`_client`), with a v3 request that
  decodes its own answer (aiokafka 0.14 decodes v3 with the v2 schema and drops the connection).
- `member_partitions`: a group member's assignment, decoded with the consumer protocol's struct.
- `joined_group`: whether a consumer's group coordinator (`_coordinator`) holds a member id and a generation.
"""

from __future__ import annotations

from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.protocol.admin import (
    DescribeGroupsRequest_v1,
    DescribeGroupsRequest_v2,
    DescribeGroupsRequest_v3,
    DescribeGroupsResponse_v3,
)
from aiokafka.protocol.api import Request, RequestStruct

UNKNOWN_MEMBER_ID = ""  # aiokafka's JoinGroupRequest.UNKNOWN_MEMBER_ID


def member_partitions(raw: bytes) -> tuple[tuple[str, int], ...]:
    if not raw:
        return ()
    try:
        decoded = ConsumerProtocolMemberAssignment.decode(raw)
    except Exception:  # not the consumer protocol (e.g. connect): no partitions to show
        return ()
    return tuple((tp.topic, tp.partition) for tp in decoded.partitions())


class _DescribeGroupsV3(RequestStruct):
    """DescribeGroups v3 with its own answer's schema: aiokafka 0.14 decodes the v3 answer with the v2 schema
    (without `authorized_operations`), fails, and drops the connection; Kafka 4 negotiates v3."""

    API_KEY = 15
    API_VERSION = 3
    RESPONSE_TYPE = DescribeGroupsResponse_v3
    SCHEMA = DescribeGroupsRequest_v3.SCHEMA


class _DescribeGroups(Request[DescribeGroupsRequest_v1 | DescribeGroupsRequest_v2 | _DescribeGroupsV3]):
    API_KEY = 15

    def __init__(self, groups: list[str]) -> None:
        self.groups = groups

    def build(self, request_struct_class: type[Any]) -> Any:
        if request_struct_class.API_VERSION < 3:
            return request_struct_class(self.groups)
        return request_struct_class(self.groups, False)


async def describe_groups(admin: AIOKafkaAdminClient, node: int, groups: list[str]) -> Any:
    """DescribeGroups for `groups`, sent to their coordinator `node` (the admin client has no public call)."""
    return await admin._client.send(node, _DescribeGroups(groups))


def joined_group(consumer: Any) -> bool:
    """Whether the consumer's group coordinator says it joined its group: a member id and a generation."""
    coordinator = getattr(consumer, "_coordinator", None)
    return bool(coordinator is not None and getattr(coordinator, "member_id", UNKNOWN_MEMBER_ID)
                != UNKNOWN_MEMBER_ID and getattr(coordinator, "generation", -1) > 0)
