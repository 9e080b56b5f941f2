"""The roles the platform knows, named once."""

CITIZEN = "citizen"
AUDITOR = "auditor"
ADMINISTRATOR = "administrator"
# Officials of a local body; the workflows of the catalogue name these.
# clerk: front office and section clerks; overseer and assistant_engineer:
# the engineering wing (site inspections, building permits);
# health_inspector: licences that touch public health; revenue_inspector:
# property tax; section_officer: heads a section (junior superintendent);
# secretary: the local body's chief officer, who signs most decisions.
CLERK = "clerk"
OFFICIAL_ROLES = (
    CLERK,
    "overseer",
    "assistant_engineer",
    "health_inspector",
    "revenue_inspector",
    "section_officer",
    "secretary",
)
# An Akshaya centre's operator: a citizen-service centre outside any local
# body, which files applications for citizens to any of them (with the
# citizen's consent); no official of a body, and no decisions on files.
AKSHAYA_OPERATOR = "akshaya_operator"
# Counter staff: who may file an application in a citizen's name, the
# citizen consenting with a one-time code. A local body's front office (its
# clerks, to their own body only) and Akshaya operators (to any body).
COUNTER_ROLES = (CLERK, AKSHAYA_OPERATOR)
ALL_ROLES = (CITIZEN, AUDITOR, ADMINISTRATOR, *OFFICIAL_ROLES, AKSHAYA_OPERATOR)

# The kinds of staff accounts, and the roles each kind may hold: officials
# belong to a local body; the others have no jurisdiction.
ROLES_OF_STAFF_KIND = {
    "official": OFFICIAL_ROLES,
    "operator": (AKSHAYA_OPERATOR,),
    "auditor": (AUDITOR,),
    "administrator": (ADMINISTRATOR,),
}
STAFF_KINDS = tuple(ROLES_OF_STAFF_KIND)


def counter_role(roles: tuple[str, ...] | list[str]) -> str | None:
    """The counter role someone files for citizens in (an Akshaya
    operator's first, as it reaches every body), or None."""
    for role in (AKSHAYA_OPERATOR, CLERK):
        if role in roles:
            return role
    return None
