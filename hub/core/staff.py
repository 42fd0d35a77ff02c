"""County staff of the console: their roles, what each role may do, their password hashes, and which notices
need approval (결재) before they are published. Pure (argon2 hashing is computation, not I/O).

Passwords are kept as argon2id hashes only (argon2-cffi's defaults, RFC 9106's second recommended set). A
sign-in for an unknown name still verifies against a dummy hash, so the answer takes as long either way."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

Role = Literal["writer", "approver", "operator", "admin"]
ROLES: dict[Role, str] = {"writer": "작성자", "approver": "결재권자", "operator": "운영자", "admin": "관리자"}

# what a role may do; a writer and an approver act for their own department only
PERMISSIONS: dict[str, frozenset[Role]] = {
    "compose": frozenset({"writer", "approver"}),
    "approve": frozenset({"approver"}),
    "all_departments": frozenset({"operator", "admin"}),
    "audit": frozenset({"operator", "admin"}),
    "staff": frozenset({"admin"}),
}

MIN_PASSWORD = 12
_hasher = PasswordHasher()
_DUMMY = _hasher.hash("not a password: verified when the name is unknown")


def may(role: str, action: str) -> bool:
    return role in PERMISSIONS[action]


def password_problem(password: str) -> str | None:
    """Why a new password is refused, in Korean; None when it is acceptable."""
    if len(password) < MIN_PASSWORD:
        return f"비밀번호는 {MIN_PASSWORD}자 이상이어야 합니다."
    if len(password) > 256:
        return "비밀번호가 너무 깁니다 (256자 이하)."
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether `password` matches; with no stored hash (an unknown name) a dummy is verified, in the same time."""
    try:
        _hasher.verify(stored_hash or _DUMMY, password)  # raises on a mismatch
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return stored_hash is not None


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


@dataclass(frozen=True)
class Staff:
    staff_id: str
    username: str
    display_name: str
    department: str
    role: Role
    active: bool = True

    @property
    def role_label(self) -> str:
        return ROLES[self.role]

    def may(self, action: str) -> bool:
        return may(self.role, action)

    def sees(self, department: str) -> bool:
        """Whether this staff member may see a department's notices."""
        return self.department == department or self.may("all_departments")


# --------------------------------------------------------------------------- 결재: which notices need approval

APPROVAL_REASONS = {
    "everyone": "군 전체 주민 대상",
    "advertising": "광고성 정보",
    "large": "대상 인원 {threshold:,}명 초과",
}


def approval_reasons(*, everyone: bool, advertising: bool, audience: int, threshold: int) -> list[str]:
    """Why a notice needs approval before it is published (empty: the author may send it)."""
    reasons = []
    if everyone:
        reasons.append(APPROVAL_REASONS["everyone"])
    if advertising:
        reasons.append(APPROVAL_REASONS["advertising"])
    if audience > threshold:
        reasons.append(APPROVAL_REASONS["large"].format(threshold=threshold))
    return reasons


def approval_problem(approver: Staff, *, author_id: str, department: str) -> str | None:
    """Why this staff member may not approve the notice, in Korean; None when they may."""
    if not approver.may("approve"):
        return "결재 권한이 없습니다."
    if approver.staff_id == author_id:
        return "작성자는 자기 소식을 결재할 수 없습니다."
    if approver.department != department:
        return "다른 부서의 소식은 결재할 수 없습니다."
    return None


def roles_in(values: Iterable[str]) -> list[Role]:
    return [v for v in values if v in ROLES]
