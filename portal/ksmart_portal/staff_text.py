"""How the kinds of staff account and their roles are worded, on the
administrator's pages and wherever a staff member's role is shown."""

from __future__ import annotations

from ksmart_common.domain.roles import ROLES_OF_STAFF_KIND
from ksmart_portal import files_text, i18n

OFFICIAL = "official"
KIND_NAMES = {
    OFFICIAL: i18n.N_("Official of a local body"),
    "operator": i18n.N_("Operator of an Akshaya centre"),
    "auditor": i18n.N_("Auditor of the platform"),
    "administrator": i18n.N_("Administrator of the platform"),
}


def kind_name(kind: str) -> str:
    return i18n.gettext(KIND_NAMES[kind]) if kind in KIND_NAMES else kind


def role_name(role: str) -> str:
    """An official's role by files_text's names; the other kinds hold one
    role each, named as their kind."""
    for kind, roles in ROLES_OF_STAFF_KIND.items():
        if kind != OFFICIAL and roles == (role,):
            return kind_name(kind)
    return files_text.role_name(role)
