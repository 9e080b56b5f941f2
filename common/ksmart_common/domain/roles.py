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
OFFICIAL_ROLES = (
    "clerk",
    "overseer",
    "assistant_engineer",
    "health_inspector",
    "revenue_inspector",
    "section_officer",
    "secretary",
)
ALL_ROLES = (CITIZEN, AUDITOR, ADMINISTRATOR, *OFFICIAL_ROLES)
