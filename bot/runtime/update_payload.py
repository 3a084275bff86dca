"""What the update log keeps of a pending update: enough to replay it after a crash, no more.

Fields python-telegram-bot does not know (its `api_kwargs`: a newer Bot API's additions, or
junk in a forged webhook body) are never read by a handler, so they are dropped; the rest is
compact JSON. An update still over `MAX_PAYLOAD_BYTES` is logged with an empty payload: it is
handled now as usual and de-duplicated by its id, but a replay after a crash skips it with a
warning. Refusing it instead would lose it even when nothing crashes, and polling has no way to
refuse an update anyway.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from telegram import TelegramObject, Update

logger = logging.getLogger(__name__)

# Text is at most 4,096 characters and a caption 1,024: a message with its entities and the
# message it replies to stays well under this; only a forged or pathological update is over it.
MAX_PAYLOAD_BYTES = 64 * 1024
RENAMED = {"from": "from_user"}  # JSON key → attribute, where python-telegram-bot renames


def replay_payload(update: Update) -> str:
    """The update as compact JSON without unknown fields; "" when over the cap."""
    data = update.to_dict()
    _drop_unknown(update, data)
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    size = len(payload.encode())
    if size > MAX_PAYLOAD_BYTES:
        logger.warning(
            "update %s is %d bytes: logged without its payload, it cannot be replayed",
            update.update_id,
            size,
        )
        return ""
    return payload


def _drop_unknown(obj: TelegramObject, data: dict[str, Any]) -> None:
    for key in obj.api_kwargs:
        data.pop(key, None)
    for key, value in data.items():
        _walk(getattr(obj, RENAMED.get(key, key), None), value)


def _walk(attribute: object, value: object) -> None:
    if isinstance(attribute, TelegramObject) and isinstance(value, dict):
        _drop_unknown(attribute, value)
    elif isinstance(attribute, tuple | list) and isinstance(value, list):
        for item, item_value in zip(attribute, value, strict=False):
            _walk(item, item_value)
