"""EC2's Describe calls as failover makes them: ids named (or a narrowing filter), NextToken followed.

What AWS documents and an emulator hides:
- DescribeNetworkInterfaces fails on big accounts unless it paginates or narrows; ids named
  directly are a keyed lookup, and MaxResults may not be sent beside them
  (`InvalidParameterCombination`), so calls by id send none and calls by filter send it;
- one id EC2 does not know fails the whole call, and the error names the missing ids: they
  are dropped and the rest asked again, never split into one call per id.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from failover.aws.errors import error_code, translate

# Describe answers of "no such id"; their messages name the ids.
NOT_FOUND = frozenset(
    {
        "InvalidInstanceID.NotFound",
        "InvalidNetworkInterfaceID.NotFound",
        "InvalidAllocationID.NotFound",
    }
)
_AWS_ID = re.compile(r"\b(?:i|eni|eipalloc)-[0-9a-zA-Z]+\b")
# A page of a filtered describe (AWS allows 5..1000).
PAGE_SIZE = 1000


def pages(call: Callable[..., Any], action: str, resource: str, **params: Any) -> list[Any]:
    """Every page `call` answers for `params`, following NextToken (errors translated)."""
    try:
        return _pages_raw(call, params)
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, action, resource) from None


def by_ids(
    call: Callable[..., Any],
    action: str,
    ids_param: str,
    ids: Sequence[str],
    *,
    batch: int,
    **params: Any,
) -> tuple[list[Any], set[str]]:
    """The replies `call` gives for `ids` (in batches of `batch`), and the ids EC2 does not know.

    A batch with unknown ids costs one more call, whatever their number: AWS names them all.
    """
    replies: list[Any] = []
    missing: set[str] = set()
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), batch):
        pending = unique[start : start + batch]
        while pending:
            try:
                replies += _pages_raw(call, {ids_param: pending, **params})
                break
            except ClientError as exc:
                named = _named_missing(exc, pending)
                if not named:
                    raise translate(exc, action, ",".join(pending)) from None
                missing |= named
                pending = [i for i in pending if i not in named]
            except BotoCoreError as exc:
                raise translate(exc, action, ",".join(pending)) from None
    return replies, missing


def _pages_raw(call: Callable[..., Any], params: dict[str, Any]) -> list[Any]:
    replies = []
    while True:
        reply = call(**params)
        replies.append(reply)
        token = reply.get("NextToken")
        if not token:
            return replies
        params = {**params, "NextToken": token}


def _named_missing(exc: ClientError, asked: Sequence[str]) -> set[str]:
    """The asked ids a NotFound error names (empty for any other error)."""
    if error_code(exc) not in NOT_FOUND:
        return set()
    message = str(exc.response.get("Error", {}).get("Message", ""))
    return set(_AWS_ID.findall(message)) & set(asked)
