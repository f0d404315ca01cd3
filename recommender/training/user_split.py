"""Which users' held-out events choose the sequence model, and which judge what is ranked over it.

Training chooses the sequence model's epoch and configuration on each user's held-out last event. The
ranker's gate then compares the learned ranker, rank fusion and each source's own order on held-out events
too. Were they the same events, the sequence model's own order would be judged on the events it was chosen
for, and would look better there than it is (on ML-100k it won validation and then lost the test split).
So the users are split in two, by a hash of their id: the same split on every run, so that no retraining
ever chooses the sequence model on the users that judge it.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

# Fewer judges than this, and the split would leave a verdict to noise: every user does both, as said.
MIN_USERS_APART = 10


def judges(user_id: str, share: float) -> bool:
    """Whether this user's held-out event judges the ranker (``share`` of users) rather than choosing
    the sequence model."""
    return zlib.crc32(f"judge\x00{user_id}".encode()) / 2**32 < share


def judging_rows(user_ids: Sequence[str], share: float) -> tuple[list[int], bool]:
    """The rows whose users judge, and whether they were kept apart: where too few users (or none) are
    left on either side, every row, and False."""
    judging = [row for row, user in enumerate(user_ids) if judges(user, share)]
    if min(len(judging), len(user_ids) - len(judging)) < MIN_USERS_APART:
        return list(range(len(user_ids))), False
    return judging, True


def choosing_rows(user_ids: Sequence[str], share: float) -> tuple[list[int], bool]:
    """The rows whose users choose the sequence model: those that do not judge, or every row where the
    split would leave too few users on either side."""
    judging, apart = judging_rows(user_ids, share)
    if not apart:
        return judging, False
    kept = set(judging)
    return [row for row in range(len(user_ids)) if row not in kept], True
