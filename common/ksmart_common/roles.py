"""The roles the platform knows, named once."""

CITIZEN = "citizen"
AUDITOR = "auditor"
ADMINISTRATOR = "administrator"
# Officials of a local body; the workflows of the catalogue name these.
OFFICIAL_ROLES = ("clerk", "overseer", "section_officer", "secretary")
ALL_ROLES = (CITIZEN, AUDITOR, ADMINISTRATOR, *OFFICIAL_ROLES)
